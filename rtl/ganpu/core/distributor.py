"""Job distribution from the scanner to the MAC lanes."""

from amaranth.hdl import Module
from amaranth.lib import wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .config import CoreConfig, check_type, CheckedComponent
from .scanner import job_layout

__all__ = ["Distributor"]


class Distributor(CheckedComponent):
    """Hands the scanner's jobs to ``config.lanes`` lanes through one small queue each.

    A job goes into the lowest-numbered queue with room, one job per cycle: a lane's
    take decision then stays local instead of rippling through every lane back to the
    scanner's queue. ``jobs.ready`` is 1 while any queue has room.

    Transaction-level contract (:meth:`model`): every job reaches exactly one lane, and
    each lane receives its jobs in the order they arrived. Latency: a job taken at
    cycle t is offered to its lane from cycle t + :attr:`latency` (the queue's write
    and its output register); throughput one job per cycle.

    Ports
    -----
    jobs : In(stream.Signature(job_layout))
    lanes : Out(stream.Signature(job_layout)).array(config.lanes)
    """

    QUEUE_DEPTH = 4  # per lane: covers a lane's take -> next take without a bubble
    latency = 2

    @classmethod
    def check_parameters(cls, config):
        check_type("config", config, CoreConfig)

    def __init__(self, config):
        self.config = config
        sig = stream.Signature(job_layout(config.geom))
        super().__init__({"jobs": In(sig), "lanes": Out(sig).array(config.lanes)})

    @staticmethod
    def model(jobs, lane_of):
        """Jobs per lane, in arrival order, given the lane ``lane_of[i]`` job ``i``
        went to (the choice depends on the lanes' back-pressure)."""
        out = {}
        for job, lane in zip(jobs, lane_of):
            out.setdefault(lane, []).append(job)
        return out

    def elaborate(self, platform):
        m = Module()
        width = self.jobs.payload.shape().size
        room_taken = 0
        for n, lane in enumerate(self.lanes):
            q = m.submodules[f"jobq{n}"] = SyncFIFOBuffered(width=width, depth=self.QUEUE_DEPTH)
            w = q.w_stream
            here = w.ready & ~room_taken
            m.d.comb += [w.payload.eq(self.jobs.payload), w.valid.eq(self.jobs.valid & here)]
            room_taken = room_taken | w.ready
            wiring.connect(m, q.r_stream, wiring.flipped(lane))
        m.d.comb += self.jobs.ready.eq(room_taken)
        return m
