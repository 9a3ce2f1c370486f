"""Open FPGA flow: a block, wrapped in a pin-saving harness, through Yosys and nextpnr.

Files, by concern:

* ``boards`` -- :class:`Board` and :data:`BOARDS` (ULX3S 85F, iCEBreaker): platform,
  family, clock target, tools, the cell types each figure counts, capacities;
  :func:`get_board`, :func:`make_platform`.
* ``harness`` -- :class:`SynthHarness` (shift-chain inputs, registered XOR-folded
  outputs, so a block's ports never become pins), :class:`BoardTop` (the harness on a
  board) and :func:`harness_overhead` (what the harness costs in a netlist).
* ``flow`` -- :func:`synthesize` runs YoWASP Yosys + nextpnr (builds cached on the
  plan's digest); :data:`TOOLS`, :func:`tool_env`, :func:`board_env` (a native
  Yosys for the boards that need one), :func:`check_tools`,
  :class:`ToolMissing`.
* ``estimate`` -- :func:`estimate`: Yosys' mapping alone (no placement), LUT4 / FF /
  multipliers / BRAM of a component in the units of a placed report (``scripts/dse.py``).
* ``report`` -- :func:`parse_reports` (LUT4, FF, multipliers, BRAM, Fmax from nextpnr's
  and Yosys' JSON reports), :class:`SynthResult` (``to_json()``),
  :func:`format_table`, :class:`SynthError`.

``ganpu synth`` and ``scripts/synth_table.py`` are the command-line front ends.
"""

from .boards import Board, BOARDS, get_board, make_platform
from .harness import SynthHarness, BoardTop, harness_overhead
from .report import SynthError, SynthResult, parse_reports, format_table
from .flow import TOOLS, ToolMissing, tool_env, board_env, check_tools, synthesize
from .estimate import estimate

__all__ = ["Board", "BOARDS", "get_board", "make_platform",
           "SynthHarness", "BoardTop", "harness_overhead",
           "SynthError", "SynthResult", "parse_reports", "format_table",
           "TOOLS", "ToolMissing", "tool_env", "board_env", "check_tools", "synthesize",
           "estimate"]
