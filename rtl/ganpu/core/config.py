"""One configuration of the compute core: MAC lanes, buffer geometry, EORS lanes and
arithmetic. Gateware, models, host lowering and benches all take a :class:`CoreConfig`
so a default is stated once (``docs/core.md``).
"""

from dataclasses import dataclass, field

from amaranth.lib import enum, wiring

from ..model.eors import DEFAULT_EORS, EorsParams

__all__ = ["Geometry", "CoreConfig", "Buf", "check_int", "check_type", "CheckedComponent"]


def check_int(name, value, lo, hi=None, *, power_of_two=False):
    """``value`` itself if it is an int in ``lo..hi`` (and a power of two when asked),
    else ``TypeError``/``ValueError`` naming ``name`` and showing ``value``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be in {rng}, not {value!r}")
    if power_of_two and value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value!r}")
    return value


def check_type(name, value, cls):
    """``value`` itself if it is a ``cls``, else ``TypeError`` naming ``name``."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, not {value!r}")
    return value


class CheckedComponent(wiring.Component):
    """A component whose constructor arguments are checked before it exists.

    Amaranth warns about every component that is created and never elaborated, so a
    constructor that refused its arguments after the object existed would leave one
    behind (an error under ``-W error``). Subclasses put their checks in :meth:`check_parameters`,
    which runs in ``__new__`` with the constructor's arguments.
    """

    def __new__(cls, *args, **kwargs):
        cls.check_parameters(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    @classmethod
    def check_parameters(cls, *args, **kwargs):
        """Raise ``TypeError``/``ValueError`` naming a bad constructor argument."""


class Buf(enum.Enum, shape=3):
    """Buffers of a core, as the host port (and the DMA) address them.

    Names are also the host's keys: ``Buf["MASK_IN"]`` or ``Buf.from_name("mask_in")``.
    """
    A = 0
    B = 1
    BIAS = 2
    MASK_IN = 3
    OUT = 4
    MASK_OUT = 5
    BW = 6  # the weights again, grouped for the EORS lanes (see descriptor_layout)

    @classmethod
    def from_name(cls, name):
        """The buffer called ``name`` (any case), or ``KeyError`` naming the valid ones."""
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise KeyError(f"Unknown buffer {name!r}; valid names: "
                           f"{', '.join(b.name.lower() for b in cls)}") from None


@dataclass(frozen=True)
class Geometry:
    """Buffer sizes of one core (log2 of the depth in elements).

    Parameters
    ----------
    a_bits, b_bits, out_bits, bias_bits, mask_bits : int
        log2 of the depth (in elements) of the A, B, OUT, BIAS and MASK buffers, 1..16.
    """

    a_bits: int = 12
    b_bits: int = 13
    out_bits: int = 13
    bias_bits: int = 8
    mask_bits: int = 13

    def __post_init__(self):
        for name in ("a_bits", "b_bits", "out_bits", "bias_bits", "mask_bits"):
            check_int(name, getattr(self, name), 1, 16)

    @property
    def dim_bits(self):
        """Width of dimensions and strides: one bit more than the widest buffer, so a
        value that fits no buffer is still representable and can be rejected."""
        return max(self.a_bits, self.b_bits, self.out_bits, self.mask_bits) + 1

    def depth(self, name):
        """Depth in elements of buffer group ``name``: "a", "b", "out", "bias" or "mask"."""
        if name not in ("a", "b", "out", "bias", "mask"):
            raise KeyError(f"Unknown buffer group {name!r}; valid: a, b, out, bias, mask")
        return 1 << getattr(self, f"{name}_bits")


# Which geometry field sizes each host-visible buffer (BW mirrors B, the masks share one).
_BUF_GROUP = {Buf.A: "a", Buf.B: "b", Buf.BIAS: "bias", Buf.MASK_IN: "mask",
              Buf.OUT: "out", Buf.MASK_OUT: "mask", Buf.BW: "b"}


@dataclass(frozen=True)
class CoreConfig:
    """Everything that sizes one compute core.

    Parameters
    ----------
    lanes : int
        MAC lanes, 1..16: exact FP16 MACs issued per cycle.
    geom : Geometry
        Buffer sizes.
    eors_lanes : int
        EORS predictor lanes, a power of two in 2..64: outputs predicted per cycle.
    eors : EorsParams
        Predictor arithmetic (``docs/eors.md``).
    host_words : int
        Elements the host port moves per cycle, a power of two in 1..16 and at most
        ``eors_lanes``: A, B, OUT and the masks are stored as words of ``host_words``
        elements, so one aligned burst of that many elements is one access
        (``docs/memory-map.md``). 1 (the default) is the one-element port.
    eors_sample_log2 : int
        EORS self-calibration sampling (``docs/eors.md``, "Self-calibration"): r > 0
        computes one predicted-zero output in ``2**r`` anyway (result discarded) to
        count false zeros; ``2**r >= eors_lanes``, r <= 16. 0 (the default): no
        sampling hardware.
    buffer_sets : int
        Buffer sets, 1 or 2 (``docs/core.md``, "Two buffer sets"). With 2 every buffer
        holds two task images: a task computes from the set the task port names at
        ``start`` while the host port loads or drains the other. 1 (the default) is the
        single-set core. With 2 the host reaches set ``s`` of buffer ``b`` at addresses
        ``s * depth(b) ..``, so every buffer's ``*_bits`` must be at most 15 (the
        host address is 16 bits).
    """

    lanes: int = 4
    geom: Geometry = field(default_factory=Geometry)
    eors_lanes: int = 16
    eors: EorsParams = DEFAULT_EORS
    host_words: int = 1
    eors_sample_log2: int = 0
    buffer_sets: int = 1

    def __post_init__(self):
        check_int("lanes", self.lanes, 1, 16)
        check_type("geom", self.geom, Geometry)
        check_int("eors_lanes", self.eors_lanes, 2, 64, power_of_two=True)
        check_type("eors", self.eors, EorsParams)
        check_int("host_words", self.host_words, 1, 16, power_of_two=True)
        check_int("eors_sample_log2", self.eors_sample_log2, 0, 16)
        check_int("buffer_sets", self.buffer_sets, 1, 2)
        if self.buffer_sets > 1:
            for name in ("a_bits", "b_bits", "out_bits", "bias_bits", "mask_bits"):
                bits = getattr(self.geom, name)
                if bits > 15:
                    raise ValueError(f"buffer_sets={self.buffer_sets!r} needs a set bit above "
                                     f"every buffer's address in the 16-bit host address: "
                                     f"{name}={bits!r} > 15")
        if self.eors_sample_log2 and (1 << self.eors_sample_log2) < self.eors_lanes:
            raise ValueError(f"eors_sample_log2={self.eors_sample_log2!r} samples more than "
                             f"one output of a word of eors_lanes={self.eors_lanes!r}")
        if self.host_words > self.eors_lanes:
            raise ValueError(f"host_words={self.host_words!r} is wider than a BIAS/BW word: "
                             f"eors_lanes={self.eors_lanes!r}")
        # BIAS and BW hold whole words of eors_lanes elements, and the speculator's
        # mask store has depth(mask) / eors_lanes words per row (none would be zero)
        lp = self.eors_lanes.bit_length() - 1
        for name, buf in (("bias_bits", "BIAS"), ("b_bits", "B"), ("mask_bits", "MASK")):
            bits = getattr(self.geom, name)
            if bits < lp:
                raise ValueError(f"eors_lanes={self.eors_lanes!r} is wider than the {buf} buffer: "
                                 f"{name}={bits!r} < log2(eors_lanes) = {lp}")
        hw = self.host_words.bit_length() - 1
        for name in ("a_bits", "out_bits"):
            bits = getattr(self.geom, name)
            if bits < hw:
                raise ValueError(f"host_words={self.host_words!r} is wider than a buffer: "
                                 f"{name}={bits!r} < log2(host_words) = {hw}")

    def depth(self, buf):
        """Elements of :class:`Buf` ``buf`` (or its name) reachable through the host port."""
        if not isinstance(buf, Buf):
            buf = Buf.from_name(buf)
        return self.geom.depth(_BUF_GROUP[buf])

    def host_depth(self, buf):
        """Elements of ``buf`` the host port reaches over every set: ``buffer_sets *
        depth(buf)`` (set ``s`` at ``s * depth(buf)``)."""
        return self.buffer_sets * self.depth(buf)

    def zero_buffers(self):
        """A fresh all-zero image of every buffer, keyed by lower-case name (the
        shape the task model and the host's shadow memory use)."""
        import numpy as np
        return {b.name.lower(): np.zeros(self.depth(b), dtype=np.uint16) for b in Buf}


DEFAULT_CORE = CoreConfig()
