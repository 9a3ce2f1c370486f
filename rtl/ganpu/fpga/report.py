"""Figures of a build: nextpnr's and Yosys' reports parsed into a :class:`SynthResult`.

:func:`parse_reports` reads nextpnr's ``--report`` JSON and Yosys' ``stat -json`` and
returns LUT4s, flip-flops, multipliers, block RAMs and the Fmax of the slowest clock,
counted from the cell types the :class:`~ganpu.fpga.boards.Board` names.
:class:`SynthResult` carries them (and the harness overhead) as JSON;
:func:`format_table` prints results as the README's table.
"""

from dataclasses import dataclass, field, asdict

from .boards import get_board

__all__ = ["SynthError", "SynthResult", "parse_reports", "format_table"]


class SynthError(RuntimeError):
    """The flow failed; the message says where and points at the log."""


@dataclass
class SynthResult:
    """Figures of one build (block + harness).

    ``lut4``/``ff``/``mult``/``bram`` include the harness; ``overhead`` says what the
    harness and the platform's reset logic add (``ff`` and ``lut4``, see
    :func:`~ganpu.fpga.harness.harness_overhead`), ``net`` subtracts it.
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
