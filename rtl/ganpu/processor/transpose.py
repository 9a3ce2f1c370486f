"""The DMA's W x W transpose buffer: W-element column vectors in, the rows of each
block out (``docs/processor.md``, section DMA)."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int

__all__ = ["Transpose"]


class Transpose(CheckedComponent):
    """A ``W x W`` buffer of ``width``-bit elements that turns columns into rows.

    Steps are numbered from the last ``restart``; steps ``bW .. bW + W - 1`` form block
    ``b``, whose input vector ``i`` (``i_data`` at step ``bW + i``) is column ``i`` of
    a ``W x W`` matrix ``X_b`` (``X_b[e, i]`` = lane ``e``). The output of step
    ``(b + 1) W + i`` is row ``i`` of the previous block: ``o_data`` lane ``j`` =
    ``X_b[i, j]``, i.e. lane ``i`` of the input of step ``bW + j``. Outputs of the first
    W steps after a restart are undefined; a step's input is taken whether the step's
    output is used or not (the last block is read out by W steps with any input).

    How: step ``i`` of a block reads line ``i`` of the buffer and writes its input into
    the same line, rows in one block and columns in the next (alternating). The line a
    step reads is exactly the line its write replaces, so one buffer of ``W * W``
    elements suffices (no double buffering) and the read and the write of a step never
    conflict (the read sees the line before the clock edge).

    Latency: ``o_data`` shows the output of a step the cycle after it (:attr:`latency`
    = 1, a register). Throughput: one step (one vector in, one out) per cycle, with
    any number of idle cycles between steps.

    Parameters
    ----------
    words : int
        ``W``, 2 to 16, a power of two (the DMA's ``cfg.core.host_words``).
    width : int
        Bits per element (16: GBUF words).

    Ports
    -----
    restart : In(1)
        The next step is step 0 (the index restarts; the contents are kept).
    step : In(1)
        Take ``i_data`` and present the step's output on ``o_data`` one cycle later.
    i_data : In(ArrayLayout(width, W))
    o_data : Out(ArrayLayout(width, W))
        Holds its value between steps.
    """

    latency = 1

    @classmethod
    def check_parameters(cls, words, width=16):
        check_int("words", words, 2, 16, power_of_two=True)
        check_int("width", width, 1)

    def __init__(self, words, width=16):
        self.words, self.width = words, width
        layout = data.ArrayLayout(width, words)
        super().__init__({"restart": In(1), "step": In(1), "i_data": In(layout),
                          "o_data": Out(layout)})

    @staticmethod
    def model(vectors, words):
        """Outputs of steps ``W ..`` for the input ``vectors`` (shape ``(S, W)``, steps
        ``0 .. S-1`` after a restart): array ``(S - W, W)``, row ``s - W`` the output of
        step ``s``."""
        import numpy as np
        x = np.asarray(vectors)
        W = words
        s = np.arange(W, x.shape[0])
        first = (s // W - 1) * W
        return x[first[:, None] + np.arange(W)[None, :], (s % W)[:, None]]

    def elaborate(self, platform):
        m = Module()
        W = self.words
        cells = [[Signal(self.width, name=f"x{r}_{c}") for c in range(W)] for r in range(W)]
        index = Signal(range(W))
        cols = Signal()     # this block writes (and reads) columns, the next rows
        outs = []
        for j in range(W):
            # lane j of row `index` and of column `index`
            row = Signal(self.width, name=f"row{j}")
            col = Signal(self.width, name=f"col{j}")
            with m.Switch(index):
                for i in range(W):
                    with m.Case(i):
                        m.d.comb += [row.eq(cells[i][j]), col.eq(cells[j][i])]
            outs.append(Mux(cols, col, row))
        with m.If(self.step):
            m.d.sync += index.eq(index + 1)
            with m.If(index == W - 1):
                m.d.sync += cols.eq(~cols)
            for j in range(W):
                m.d.sync += self.o_data[j].eq(outs[j])
            for r in range(W):
                for c in range(W):
                    with m.If(Mux(cols, index == c, index == r)):
                        m.d.sync += cells[r][c].eq(Mux(cols, self.i_data[r], self.i_data[c]))
        with m.If(self.restart):
            m.d.sync += index.eq(0)
        return m
