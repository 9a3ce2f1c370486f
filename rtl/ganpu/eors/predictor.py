from amaranth.hdl import Module, Cat, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from ..model.eors import DEFAULT_EORS, eors_state, predicted_live
from .lane import EorsLane, check_params

__all__ = ["EorsPredictor"]


class EorsPredictor(wiring.Component):
    """EORS for ``lanes`` outputs of one row at once: :class:`EorsLane` copies sharing
    the activation.

    For a row ``m`` of activations ``A[m, :]`` and ``lanes`` output columns
    ``n0 .. n0+lanes-1``, cycle ``k`` presents ``x = A[m, k]`` (broadcast) and
    ``w[j] = B[n0 + j, k]``; lane ``j`` accumulates output ``(m, n0 + j)`` exactly as
    :func:`ganpu.model.eors.eors_acc` does. The cycle rule (``valid``, ``first``,
    ``last``, bubbles) is the lane's, applied to all lanes together; ``bias[j]`` is
    read with ``first``. With ``use_bias`` off (no bias pipes) the bias can ride as the
    row's first term instead: ``x`` = 1.0 (0x3C00), ``w[j]`` = ``bias[j]``.

    **Valid-only interface, no backpressure.** There is no ``ready``: the predictor
    never stalls and its consumer must take every ``o_valid`` cycle (one per completed
    row of ``lanes`` outputs). A producer that may pause simply sends bubbles
    (``valid`` = 0).

    Latency ``EorsLane.latency`` = 6 cycles from a cycle carrying ``last`` to its
    ``o_valid``; throughput one ``k`` per cycle for all lanes.

    Ports
    -----
    valid : In(1)                       a term is present this cycle
    x : In(16)                          binary16 activation, shared by every lane
    w : In(ArrayLayout(16, lanes))      binary16 weight per lane
    first : In(1)                       this cycle starts a new row
    bias : In(ArrayLayout(16, lanes))   binary16 bias per lane, read with ``first``
    last : In(1)                        this cycle ends the row
    live : Out(lanes)                   bit j: output j must be computed
    forced : Out(lanes)                 bit j: forced live by an Inf/NaN operand
    acc : Out(ArrayLayout(signed(width), lanes))  the accumulators (for checking)
    o_valid : Out(1)                    one cycle per completed row
    rel : In(5)                         scale-aware mode only: the level, read with ``last``
    mag : Out(ArrayLayout(width, lanes))  scale-aware mode only: the magnitude sums
    """

    latency = EorsLane.latency

    @staticmethod
    def _checked(lanes=16, params=DEFAULT_EORS):
        from ..core.config import check_int  # here: ganpu.core imports this package
        return check_int("lanes", lanes, 1), check_params(params)

    def __new__(cls, *args, **kwargs):
        # Refuse bad parameters before the component exists: nothing half-built is left
        # for Amaranth to report as "created but never used".
        cls._checked(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, lanes=16, params=DEFAULT_EORS):
        self.lanes, self.params = self._checked(lanes, params)
        super().__init__({
            "valid": In(1),
            "x": In(16),
            "w": In(data.ArrayLayout(16, self.lanes)),
            "first": In(1),
            "bias": In(data.ArrayLayout(16, self.lanes)),
            "last": In(1),
            "live": Out(self.lanes),
            "forced": Out(self.lanes),
            "acc": Out(data.ArrayLayout(signed(params.width), self.lanes)),
            "o_valid": Out(1),
            **({"rel": In(5), "mag": Out(data.ArrayLayout(params.width, self.lanes))}
               if params.rel is not None else {}),
        })

    @staticmethod
    def model(A, B, bias=None, params=DEFAULT_EORS):
        """``{"acc", "forced", "live"}`` (plus ``"mag"`` in scale-aware mode) arrays of
        shape (M, N) for rows ``A`` (M, K) against weights ``B`` (N, K), by
        :func:`ganpu.model.eors.eors_state`; N may exceed ``lanes`` (the columns then
        take several passes)."""
        acc, mag, forced, L = eors_state(A, B, bias, params)
        out = {"acc": acc, "forced": forced, "live": predicted_live(acc, mag, forced, L, params)}
        if params.rel is not None:
            out["mag"] = mag
        return out

    def elaborate(self, platform):
        m = Module()
        lanes = []
        for j in range(self.lanes):
            lane = EorsLane(self.params)
            m.submodules[f"lane{j}"] = lane
            m.d.comb += [
                lane.valid.eq(self.valid),
                lane.x.eq(self.x),
                lane.w.eq(self.w[j]),
                lane.first.eq(self.first),
                lane.bias.eq(self.bias[j]),
                lane.last.eq(self.last),
                self.acc[j].eq(lane.acc),
            ]
            if self.params.rel is not None:
                m.d.comb += [lane.rel.eq(self.rel), self.mag[j].eq(lane.mag)]
            lanes.append(lane)
        m.d.comb += [
            self.live.eq(Cat(lane.live for lane in lanes)),
            self.forced.eq(Cat(lane.forced for lane in lanes)),
            # every lane sees the same control, so lane 0 speaks for all
            self.o_valid.eq(lanes[0].o_valid),
        ]
        return m
