"""The boards the open flow targets: devices, cell types, capacities, platforms.

A :class:`Board` names its Amaranth platform (from ``amaranth-boards``), its FPGA
family, the clock target nextpnr is given, the tools of the flow and the cell types
each figure of a report is counted from. :func:`make_platform` turns one into a
platform whose default clock is constrained to that target and that stops after place
and route unless a bitstream is asked for.
"""

import copy
import importlib
from dataclasses import dataclass, field

from amaranth.build import Clock

__all__ = ["Board", "BOARDS", "get_board", "make_platform"]


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
    # The board's top needs a native Yosys (``$YOSYS``, else ``yosys`` on the PATH): it
    # does not fit the 4 GB address space of YoWASP's 32-bit WebAssembly Yosys.
    native_yosys: bool = False


BOARDS = {
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", family="ecp5",
        target_mhz=100.0, tools=("yosys", "nextpnr-ecp5"), pack_tool="ecppack",
        # TRELLIS_COMB is one LUT4 site (a LUT4, or half a CCU2C carry): the unit the
        # 83,640 figure of the 85F counts.
        lut_cells=("TRELLIS_COMB",), ff_cells=("TRELLIS_FF",),
        mult_cells=("MULT18X18D",), bram_cells=("DP16KD",),
        capacity={"lut4": 83640, "mult": 156, "bram": 208}, native_yosys=True),
    "icebreaker": Board(
        name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40", target_mhz=50.0, tools=("yosys", "nextpnr-ice40"), pack_tool="icepack",
        # an ICESTORM_LC is a LUT4 + FF site; LUT4s are counted from Yosys (SB_LUT4)
        lut_cells=("ICESTORM_LC",), ff_cells=("SB_DFF",),
        mult_cells=("SB_MAC16",), bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"),
        capacity={"lut4": 5280, "mult": 8, "bram": 30 + 4}),
}


def get_board(name):
    """The :class:`Board` called ``name``; ``ValueError`` lists the valid names."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"Unknown board {name!r}; valid boards: {', '.join(BOARDS)}") from None


def _platform_class(board):
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
