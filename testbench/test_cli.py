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
