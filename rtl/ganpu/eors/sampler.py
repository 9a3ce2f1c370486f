from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import numpy as np

from ..model.eors import MIX_ROUNDS, MIX_FINAL, KEY_BITS, mix16

__all__ = ["EorsSampleHash"]


def _mix(m, x, name):
    """:func:`ganpu.model.eors.mix16` as combinational logic on the 16-bit ``x``."""
    for i, (a, b) in enumerate(MIX_ROUNDS):
        y = Signal(16, name=f"{name}_x{i}")
        z = Signal(16, name=f"{name}_a{i}")
        m.d.comb += [y.eq(x ^ (x >> a)), z.eq(y + (y << b))]   # the add keeps 16 bits
        x = z
    out = Signal(16, name=f"{name}_out")
    m.d.comb += out.eq(x ^ (x >> MIX_FINAL))
    return out


class EorsSampleHash(wiring.Component):
    """The self-calibration sampler: which output of a mask word is computed anyway to
    measure false zeros (``docs/eors.md``, "Sampling"), bit-exact with
    :class:`ganpu.model.eors.EorsSampler`.

    Stateless: for a word with ``valid`` = 1 it computes
    ``lane = mix16(mix16(key) ^ word) & (2**rate_log2 - 1)`` (``key`` the row's key,
    ``(task key + m) mod 2**16``, :func:`ganpu.model.eors.sample_lane`) and ``sample``
    is the one-hot of ``lane`` when that is below ``lanes``, else 0. Nothing is kept
    from word to word, row to row or task to task, so the sample set of a task does
    not depend on which core runs which rows, nor in what order.

    Latency 2: stage 1 registers ``mix16(key)`` (three shift-adds) and the word, stage
    2 the second mix and the one-hot; ``sample`` is 0 two cycles after a cycle without
    ``valid``. Throughput one word per cycle. No multiplier: six 16-bit adders, XORs
    and a small compare.

    Parameters
    ----------
    lanes : int
        The predictor's P, a power of two in 1..64.
    rate_log2 : int
        One output in ``2**rate_log2``; ``2**rate_log2 >= lanes``, at most 16.

    Ports
    -----
    valid : In(1)           a word to sample this cycle
    key : In(16)            the row's key (the task's ``eors_key`` + row, mod 2**16)
    word : In(16)           the word's index in its row (group g: outputs g*P .. g*P+P-1)
    sample : Out(lanes)     the sampled lane of the word two cycles back (one-hot or 0)
    """

    latency = 2

    @staticmethod
    def _checked(lanes=16, rate_log2=7):
        from ..core.config import check_int  # here: ganpu.core imports this package
        check_int("lanes", lanes, 1, 64, power_of_two=True)
        check_int("rate_log2", rate_log2, 0, 16)
        if (1 << rate_log2) < lanes:
            raise ValueError(f"rate_log2 must give 2**rate_log2 >= lanes = {lanes!r}, "
                             f"not {rate_log2!r}")
        return lanes, rate_log2

    def __new__(cls, *args, **kwargs):
        # Refuse bad parameters before the component exists: nothing half-built is left
        # for Amaranth to report as "created but never used".
        cls._checked(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, lanes=16, rate_log2=7):
        self.lanes, self.rate_log2 = self._checked(lanes, rate_log2)
        super().__init__({"valid": In(1), "key": In(KEY_BITS), "word": In(16),
                          "sample": Out(self.lanes)})

    @staticmethod
    def model(valid, keys, words, lanes=16, rate_log2=7):
        """Per-cycle ``sample`` outputs (an object array, the value after each cycle)
        for per-cycle inputs ``valid``, ``keys``, ``words``: each valid word's one-hot
        sample ``latency`` cycles later, 0 otherwise (0 for the first cycles)."""
        lat = EorsSampleHash.latency
        out = [0] * len(valid)
        for t, (v, k, w) in enumerate(zip(valid, keys, words)):
            if v and t + lat - 1 < len(out):
                lane = mix16(mix16(int(k)) ^ (int(w) & 0xFFFF)) & ((1 << rate_log2) - 1)
                out[t + lat - 1] = (1 << lane) if lane < lanes else 0
        return np.array(out, dtype=object)

    def elaborate(self, platform):
        m = Module()
        # stage 1: the row's mix (the key changes once per row, but registering it per
        # word keeps the block stateless and the path to one mix)
        h1, w1, v1 = Signal(16), Signal(16), Signal()
        m.d.sync += [h1.eq(_mix(m, self.key, "row")), w1.eq(self.word), v1.eq(self.valid)]
        # stage 2: the word's mix and the one-hot of its low bits
        h2 = _mix(m, h1 ^ w1, "word")
        sample = Signal(self.lanes)
        for j in range(self.lanes):
            m.d.comb += sample[j].eq(v1 & (h2[:self.rate_log2] == j) if self.rate_log2 else v1 & (j == 0))
        m.d.sync += self.sample.eq(sample)
        return m
