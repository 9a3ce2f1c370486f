"""One configuration of the processor, shared by gateware, compiler, models and benches
(``docs/processor.md``)."""

from dataclasses import dataclass, field

from ..core.config import CoreConfig, Geometry, CheckedComponent, check_int, check_type

__all__ = ["ProcessorConfig", "ProcessorComponent", "CONFIGS", "config"]


@dataclass(frozen=True)
class ProcessorConfig:
    """Everything that sizes the processor.

    Parameters
    ----------
    cores : int
        Compute cores, 1..16.
    core : CoreConfig
        Configuration of every core (all cores are alike).
    gbuf_bits : int
        log2 of the global buffer's depth in 16-bit words, 8..22.
    program_bits : int
        log2 of the task table's depth in tasks, 1..10.
    deps : int
        Dependency slots per task record, 1..8.
    window : int
        Undispatched tasks the scheduler looks at for a ready one, 1..8.
    """

    cores: int = 4
    core: CoreConfig = field(default_factory=CoreConfig)
    gbuf_bits: int = 18
    program_bits: int = 8
    deps: int = 4
    window: int = 4

    def __post_init__(self):
        check_int("cores", self.cores, 1, 16)
        check_type("core", self.core, CoreConfig)
        check_int("gbuf_bits", self.gbuf_bits, 8, 22)
        check_int("program_bits", self.program_bits, 1, 10)
        check_int("deps", self.deps, 1, 8)
        check_int("window", self.window, 1, 8)

    @property
    def gbuf_depth(self):
        return 1 << self.gbuf_bits

    @property
    def program_depth(self):
        return 1 << self.program_bits


# Named configurations: ``sim`` is large, for simulation; the board ones fit their FPGA.
# ``sim`` and ``small`` have a wide host port (``host_words``): the DMA moves 8 (4)
# words per cycle in its wide passes; 8 was chosen with the cycle model
# (``docs/astm.md``: the step's transposed operands keep the DMA one word per cycle, so
# 16 gains little over 8). ``sim`` samples one predicted-zero output in 128 for EORS
# self-calibration (``docs/eors.md``: the study's one setting): the results are those
# of cores without sampling, and the processor has the calibration counter bank.
# ``sim`` has two buffer sets per core (prefetching: a core's next task loads while it
# computes, ``docs/astm.md``; twice the block RAM, which a simulation does not mind);
# the board configs keep one.
CONFIGS = {
    "sim": ProcessorConfig(core=CoreConfig(host_words=8, eors_sample_log2=7, buffer_sets=2)),
    "small": ProcessorConfig(cores=2, core=CoreConfig(lanes=2, geom=Geometry(
        a_bits=8, b_bits=9, out_bits=9, bias_bits=5, mask_bits=9), eors_lanes=4, host_words=4),
        gbuf_bits=12, program_bits=4, deps=2, window=2),
    # one default core (116 DP16KD), the task table (35) and a 32k-word GBUF (32 DP16KD)
    # of the 85F's 208 block RAMs: with a 64k-word GBUF the placed top needed 218
    # (docs/boards.md)
    "ulx3s-85f": ProcessorConfig(cores=1, gbuf_bits=15, program_bits=6),
    # the smallest compute config; it does not fit the UP5K's 5,280 LUT4s, so the
    # iCEBreaker top carries the link and a GBUF only (docs/boards.md)
    "icebreaker": ProcessorConfig(cores=1, core=CoreConfig(lanes=1, geom=Geometry(
        a_bits=6, b_bits=6, out_bits=6, bias_bits=2, mask_bits=6), eors_lanes=2),
        gbuf_bits=10, program_bits=3, deps=1, window=1),
}


def config(name):
    """The named configuration ``name``; ``KeyError`` listing the valid names."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"Unknown processor config {name!r}; valid names: {', '.join(CONFIGS)}") from None


class ProcessorComponent(CheckedComponent):
    """A block of the processor, built for one :class:`ProcessorConfig` (checked before
    the component exists, see :class:`~ganpu.core.config.CheckedComponent`)."""

    @classmethod
    def check_parameters(cls, cfg):
        check_type("cfg", cfg, ProcessorConfig)
