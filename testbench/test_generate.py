"""``ganpu generate`` writes Verilog for every registered block that Verilator lints
clean with exactly the project's waivers (``harness.VERILATOR_WAIVERS``), and each
waiver is still needed by at least one block."""

import subprocess

import pytest

import harness
from ganpu import blocks, cli


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """{name: Verilog path} of every block ``ganpu generate`` could write (a block that
    fails to elaborate fails its own test_lint_clean, not every test)."""
    out = tmp_path_factory.mktemp("verilog")
    cli.main(["generate", "--out", str(out)])
    return {name: out / f"{name}.v" for name in blocks.BLOCKS if (out / f"{name}.v").exists()}


def lint(path, top, waivers):
    harness.setup_verilator()
    proc = subprocess.run(["verilator", "--lint-only", *waivers, "--top-module", top, str(path)],
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def test_registry_not_empty():
    assert "fp16_to_fp32" in blocks.BLOCKS


def test_generate_prints_paths(tmp_path, capsys):
    assert cli.main(["generate", "--out", str(tmp_path), "--block", "fp16_to_fp32"]) == 0
    assert str(tmp_path / "fp16_to_fp32.v") in capsys.readouterr().out
    text = (tmp_path / "fp16_to_fp32.v").read_text()
    assert "module fp16_to_fp32" in text


@pytest.mark.parametrize("name", list(blocks.BLOCKS))
def test_lint_clean(generated, name):
    assert name in generated, f"ganpu generate wrote no Verilog for {name} (see its traceback)"
    rc, log = lint(generated[name], name, harness.VERILATOR_WAIVERS)
    assert rc == 0, f"{name}: Verilator lint failed with {harness.VERILATOR_WAIVERS}:\n{log}"


@pytest.mark.parametrize("waiver", harness.VERILATOR_WAIVERS)
def test_waiver_still_needed(generated, waiver):
    rest = [w for w in harness.VERILATOR_WAIVERS if w != waiver]
    needed_by = [name for name, path in generated.items() if lint(path, name, rest)[0] != 0]
    assert set(generated) == set(blocks.BLOCKS), "ganpu generate skipped a block"
    assert needed_by, (f"{waiver} is needed by no registered block: drop it from "
                       f"harness.VERILATOR_WAIVERS")
