"""GAN training through the golden model (one step = D update then
G update). Only the loss, the final tanh/sigmoid and the noise/batch sampling run on
the host, in float32; everything else is :mod:`ganpu.model` gemms."""

from dataclasses import dataclass, field

import numpy as np

from .. import numerics
from ..model import SGD, EorsParams
from .data import load_digits_scaled
from .nets import build_gan, ZDIM, NETS

__all__ = ["GAN", "TrainConfig", "DeviceTrainer", "device_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Parameters
    ----------
    net : {"mlp", "conv"}
    batch : int
        Real (and fake) samples per step, >= 1.
    seed : int
    eors : EorsParams or None
        With a value, FP of every ReLU layer computes only the outputs EORS predicts
        live (the hardware's speculation); None computes all.
    lr_d, lr_g, momentum : float
        SGD with momentum on the binary32 masters.
    loss_scale : float
        Power of two the host multiplies the loss gradient by before it enters the
        binary16 datapath (keeps small gradients out of the subnormal range); SGD
        divides it out exactly.
    """

    net: str = "mlp"
    batch: int = 32
    seed: int = 0
    eors: EorsParams = None
    lr_d: float = 0.05
    lr_g: float = 0.05
    momentum: float = 0.5
    loss_scale: float = 64.0

    def __post_init__(self):
        if self.net not in NETS:
            raise ValueError(f"net must be one of {NETS!r}, got {self.net!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be a positive int, got {self.batch!r}")
        if self.eors is not None and not isinstance(self.eors, EorsParams):
            raise TypeError(f"eors must be an EorsParams or None, got {self.eors!r}")


def _f32(bits):
    return numerics.f32_value(numerics.widen(bits))


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


class GAN:
    """A reference GAN and its training state (deterministic for a given config)."""

    def __init__(self, config=None):
        self.cfg = cfg = config if config is not None else TrainConfig()
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {cfg!r}")
        rng = np.random.default_rng(cfg.seed)
        self.G, self.D = build_gan(cfg.net, rng)
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.X, _ = load_digits_scaled()
        self.opt_d = SGD(cfg.lr_d, cfg.momentum, cfg.loss_scale)
        self.opt_g = SGD(cfg.lr_g, cfg.momentum, cfg.loss_scale)
        self.steps = 0
        self.history = []
        self.phase_tag = None  # "d_update" / "g_update", read by export hooks

    def noise(self, n):
        return numerics.f16_bits(self.rng.standard_normal((n, ZDIM)).astype(np.float32))

    def generate(self, z16):
        """Host tanh of G's output: float32 (n, 64) images in [-1, 1]."""
        out = self.G.forward(z16, self.cfg.eors)
        return np.tanh(_f32(out).reshape(len(z16), -1)).astype(np.float32)

    def sample(self, n, seed=1234):
        """n generated images (float32, (n, 64)) from a fixed noise seed."""
        z = numerics.f16_bits(np.random.default_rng(seed).standard_normal((n, ZDIM)).astype(np.float32))
        return self.generate(z)

    def step(self):
        """One training step; returns {"d_loss", "g_loss"} (float)."""
        cfg, B, S = self.cfg, self.cfg.batch, np.float32(self.cfg.loss_scale)
        eps = np.float32(1e-7)
        # ---- D update: G FP, D FP on real+fake, BP+WG through D
        self.phase_tag = "d_update"
        fake = self.generate(self.noise(B))
        real = self.X[self.rng.integers(0, len(self.X), B)]
        x = numerics.f16_bits(np.concatenate([real, fake]))
        logits = _f32(self.D.forward(x, cfg.eors))[:, 0]
        p = _sigmoid(logits)
        y = np.concatenate([np.ones(B), np.zeros(B)]).astype(np.float32)
        d_loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        dlogit = numerics.f16_bits(((p - y) / np.float32(2 * B) * S)[:, None])
        grads, _ = self.D.backward(dlogit, wg=True)
        self.opt_d.step(self.D.layers, grads)
        # ---- G update: G FP, D FP on fakes, BP through D (no WG), BP+WG through G
        self.phase_tag = "g_update"
        fake = self.generate(self.noise(B))
        logits = _f32(self.D.forward(numerics.f16_bits(fake), cfg.eors))[:, 0]
        p = _sigmoid(logits)
        g_loss = float(-np.mean(np.log(p + eps)))  # non-saturating G loss
        dlogit = numerics.f16_bits(((p - 1) / np.float32(B) * S)[:, None])
        _, dfake = self.D.backward(dlogit, wg=False, need_dx=True)
        dgout = _f32(dfake).reshape(B, -1) * (1 - fake * fake)  # tanh' on the host
        dgout = numerics.f16_bits(dgout.astype(np.float32)).reshape(B, -1)
        grads, _ = self.G.backward(dgout.reshape(self._gout_shape(B)), wg=True)
        self.opt_g.step(self.G.layers, grads)
        self.phase_tag = None
        self.steps += 1
        rec = {"step": self.steps, "d_loss": d_loss, "g_loss": g_loss}
        self.history.append(rec)
        return rec

    def _gout_shape(self, B):
        return (B, 1, 8, 8) if self.cfg.net == "conv" else (B, 64)

    def train(self, steps, progress=None):
        """Run ``steps`` steps; ``progress(rec)`` is called after each."""
        for _ in range(steps):
            rec = self.step()
            if progress is not None:
                progress(rec)
        return self.history


def device_config(cfg, gan, gbuf_bits=None):
    """``cfg`` (a ProcessorConfig or a config name) for training ``gan`` with the
    weight update on the device: with ``gbuf_bits`` that many GBUF address bits, else
    the config's own. ``ValueError`` (the compiler's, naming the tensor) when the step
    does not fit."""
    import dataclasses
    from ..host.compiler import compile_gan
    from ..processor.config import config as named
    cfg = named(cfg) if isinstance(cfg, str) else cfg
    if gbuf_bits is not None:
        cfg = dataclasses.replace(cfg, gbuf_bits=gbuf_bits)
    return cfg, compile_gan(cfg, gan, update=True)


# seconds between two STATE polls while a program runs: a poll every round trip
# kept the host's CPU busy for the whole step and the link's clock at --ratio
# (docs/sim.md); the answer's wait costs at most this much per PAUSE and DONE
POLL_PAUSE = 1e-3


def _link_driver(transport, cfg, wait_seconds, poll_pause=POLL_PAUSE):
    """A :class:`~ganpu.host.processor_driver.ProcessorDriver` whose waits for DONE or a
    PAUSE are bounded by wall time, not by a poll count: over a link a poll is one round
    trip (a fraction of a millisecond on ``ganpu sim``'s socket), and the simulated step
    runs for tens of seconds, longer than the default polls last. It remembers the
    records it wrote (``cache_program``): the trainer is the device's one client, and
    each step's program differs from the last one only where calibration changed it.
    Between two polls it sleeps ``poll_pause`` seconds."""
    import asyncio
    import time
    from ..host.processor_driver import ProcessorDriver, ProgramFailed
    from ..processor.program import State

    class LinkDriver(ProcessorDriver):
        async def wait(self, until=(State.DONE, State.PAUSED), polls=None, interval=16):
            end = time.monotonic() + wait_seconds
            while True:
                s = await self.state()
                if s in until:
                    return s
                if s == State.ERROR:
                    raise ProgramFailed(*await self.error())
                if time.monotonic() > end:
                    raise TimeoutError(
                        f"processor still {s.name} after {wait_seconds:g} s (waiting for "
                        f"{', '.join(u.name for u in until)}); a longer wait_timeout "
                        f"lets a slower device finish")
                await self.t.idle(interval)
                await asyncio.sleep(poll_pause)

    return LinkDriver(transport, cfg, cache_program=True)


def _counting_run(banks):
    """A ``run`` for :func:`ganpu.host.compiler.run_step`: the program model that also
    appends the step's EORS counter bank to ``banks``."""
    def run(cfg, gbuf, records, on_pause):
        from ..processor.model import run_program_eors
        from ..processor.program import ProgramError
        err, task, core_err, out, bank = run_program_eors(cfg, gbuf, records, on_pause)
        if err != ProgramError.OK:
            raise RuntimeError(f"program refused: {err!r} at record {task} (core {core_err!r})")
        banks.append(bank)
        return out
    return run


class DeviceTrainer:
    """Trains ``gan`` with every gemm and every weight update on a processor
    (``docs/update.md``); the host keeps the losses, the final tanh/sigmoid and the data.

    ``device``: ``"model"`` (the processor's bit-exact program model, in process),
    ``"sim"`` (``ganpu sim``: the Verilator-native simulator of ``cfg``, ``binary`` or
    built or taken from the cache, over ``socket://``) or a pyserial URL (a board, or a
    ``ganpu sim`` already running). The weights, masters and momenta stay on the device
    from step to step; :meth:`close` (or the last :meth:`step` with ``sync``) reads them
    back into ``gan``, bit for bit what ``GAN.step`` computes.

    ``timeout`` (seconds) bounds each answer of the link, ``wait_timeout`` (seconds)
    each wait for the program's DONE or next PAUSE (:class:`TimeoutError` naming the
    state the device is in). ``log`` (a callable) gets the simulator build's progress;
    ``server_kw`` the simulator's options (:class:`ganpu.sim.native.Server`'s keywords:
    ``ratio``, ``settle``, ...).

    ``calibrate``: EORS self-calibration between steps (``docs/eors.md``, "Calibration
    in the training loop"): after each step the step's counter bank (read and cleared
    on the device; :func:`ganpu.processor.model.run_program_eors`'s on ``"model"``)
    goes to an :class:`~ganpu.host.calibrate.EorsCalibration` of the program, which
    writes each layer's new level and the next step's sampling keys into the records.
    The counters do not depend on the schedule, so both backends choose the same
    levels and train bit-identically. Needs a config whose cores sample and predict in
    scale-aware mode (:func:`ganpu.host.calibrate.calibration_config`) and ``gan``
    with the same EORS parameters. ``calibrate`` may also be the
    :class:`~ganpu.model.eors.EorsCalibrator` to use (default: the one setting's).
    :attr:`levels` lists the levels after each step.
    """

    def __init__(self, gan, device="model", cfg="sim", gbuf_bits=None, policy=None, timeout=30.0,
                 wait_timeout=600.0, binary=None, log=None, calibrate=False, server_kw=None):
        from ..processor.program import Policy
        if not isinstance(gan, GAN):
            raise TypeError(f"gan must be a GAN, got {gan!r}")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be 'model', 'sim' or a serial URL, got {device!r}")
        if binary is not None and device != "sim":
            raise ValueError(f"binary is for device 'sim', got device {device!r}")
        if server_kw is not None and device != "sim":
            raise ValueError(f"server_kw is for device 'sim', got device {device!r}")
        for name, value in (("timeout", timeout), ("wait_timeout", wait_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.gan, self.device = gan, device
        self.cfg, self.program = device_config(cfg, gan, gbuf_bits)
        self.policy = Policy.ADAPTIVE if policy is None else \
            Policy[policy.upper()] if isinstance(policy, str) else Policy(policy)
        self.server = self.drv = None
        self.gbuf = None
        self.counters = []
        self.fresh = True
        self.cal = None
        from ..host.calibrate import set_eors_keys
        set_eors_keys(self.program)     # distinct sampling keys per gemm (docs/eors.md)
        if calibrate is not False:
            from ..host.calibrate import EorsCalibration
            self.cal = EorsCalibration(self.program, None if calibrate is True else calibrate)
        if device == "sim":
            from ..sim.native import build, Server
            if binary is None:
                binary, _ = build(self.cfg, log=log)
            self.server = Server(binary, **(server_kw or {}))
            self.server.start()
            url = self.server.url
        else:
            url = device
        if device != "model":
            from ..host.link import connect
            try:
                self.drv = connect(url, self.cfg, timeout=timeout)
            except BaseException:
                self.close()
                raise
            self.drv.driver = _link_driver(self.drv.driver.t, self.cfg, wait_timeout)
            if self.cal is not None:
                self.drv.clear_eors()     # the bank counts this run's steps only

    def step(self, sync=False):
        """One training step on the device; ``sync`` reads the weights back into the
        GAN. Returns the losses (as ``GAN.step``)."""
        from ..host.compiler import run_step, run_step_driver
        weights, self.fresh = self.fresh, False
        if self.drv is None:
            self.gbuf = np.zeros(self.cfg.gbuf_depth, np.uint16) if self.gbuf is None else self.gbuf
            banks = []
            rec, self.gbuf = run_step(self.program, self.gan, self.gbuf, weights=weights,
                                      run=None if self.cal is None else _counting_run(banks))
            if self.cal is not None:
                self.cal.step(banks[0])
            return rec
        rec, _, counters = self.drv._run(run_step_driver(
            self.drv.driver, self.program, self.gan, self.policy, read_back=False,
            weights=weights, sync=sync))
        self.counters.append(counters)
        if self.cal is not None:
            self.cal.step(self.drv.read_eors_bank(clear=True))
        return rec

    @property
    def levels(self):
        """The per-layer EORS levels chosen after each step (``[{layer: q}, ...]``;
        empty without ``calibrate``)."""
        return [] if self.cal is None else list(self.cal.history)

    def train(self, steps, progress=None):
        """``steps`` steps (the last one syncs the weights back); ``progress(rec)`` after each."""
        for i in range(steps):
            rec = self.step(sync=i == steps - 1)
            if progress is not None:
                progress(rec)
        return self.gan.history

    def close(self):
        if self.drv is not None:
            self.drv.close()
            self.drv = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
