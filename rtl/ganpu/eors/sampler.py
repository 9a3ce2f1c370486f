from amaranth.hdl import Module, Signal, Mux, C
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import numpy as np

from ..model.eors import LFSR_POLY, LFSR_SEED, lfsr_step

__all__ = ["EorsSampleLfsr"]


class EorsSampleLfsr(wiring.Component):
    """The self-calibration sampler's LFSR: which output of a mask word is computed
    anyway to measure false zeros (``docs/eors.md``, "Self-calibration"), bit-exact with
    :class:`ganpu.model.eors.EorsSampler`.

    A 16-bit Galois LFSR shifting right with polynomial 0xB400 (x^16 + x^14 + x^13 +
    x^11 + 1), reset value 0xACE1. Each cycle with ``step`` = 1 (one per mask word, in
    the speculator's order) it advances once and the word's sample is the one-hot of
    lane ``state' & (2**rate_log2 - 1)`` when that is below ``lanes``, else no lane.
    ``load`` = 1 writes ``seed`` instead (a host's CSR write; it wins over ``step``).

    Latency 1: ``sample`` and ``state`` show the result of a ``step`` (or ``load``) on
    the next cycle, and ``sample`` is 0 after a cycle without ``step``. Throughput one
    word per cycle. No multiplier: a 16-bit register, three XORs and a small compare.

    Parameters
    ----------
    lanes : int
        The predictor's P, a power of two in 1..64.
    rate_log2 : int
        One output in ``2**rate_log2``; ``2**rate_log2 >= lanes``, at most 16.

    Ports
    -----
    step : In(1)       advance once for one mask word
    load : In(1)       state <= seed (a zero seed is refused by the model; here it
                       locks the LFSR at 0, which samples lane 0 of every word)
    seed : In(16)
    state : Out(16)    the LFSR state
    sample : Out(lanes)  the sampled lane of the last stepped word (one-hot or 0)
    """

    latency = 1

    @staticmethod
    def _checked(lanes=16, rate_log2=6):
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

    def __init__(self, lanes=16, rate_log2=6):
        self.lanes, self.rate_log2 = self._checked(lanes, rate_log2)
        super().__init__({
            "step": In(1), "load": In(1), "seed": In(16),
            "state": Out(16, init=LFSR_SEED), "sample": Out(self.lanes),
        })

    @staticmethod
    def model(steps, loads, seeds, lanes=16, rate_log2=6, state=LFSR_SEED):
        """Per-cycle ``(state, sample)`` outputs (lists, the value after each cycle) for
        per-cycle inputs ``steps``, ``loads``, ``seeds``."""
        out_state, out_sample = [], []
        for st, ld, sd in zip(steps, loads, seeds):
            sample = 0
            if ld:
                state = int(sd)
            elif st:
                state = lfsr_step(state)
                lane = state & ((1 << rate_log2) - 1)
                sample = (1 << lane) if lane < lanes else 0
            out_state.append(state)
            out_sample.append(sample)
        return np.array(out_state), np.array(out_sample, dtype=object)

    def elaborate(self, platform):
        m = Module()
        s = self.state
        nxt = Signal(16)
        m.d.comb += nxt.eq((s >> 1) ^ Mux(s[0], LFSR_POLY, 0))
        lane = nxt[:self.rate_log2] if self.rate_log2 else C(0, 1)
        sample = Signal(self.lanes)
        for j in range(self.lanes):
            m.d.comb += sample[j].eq(lane == j)
        with m.If(self.load):
            m.d.sync += [s.eq(self.seed), self.sample.eq(0)]
        with m.Elif(self.step):
            m.d.sync += [s.eq(nxt), self.sample.eq(sample)]
        with m.Else():
            m.d.sync += self.sample.eq(0)
        return m
