"""The host's part of EORS self-calibration on the processor (``docs/eors.md``,
"Self-calibration"): the counter bank's slots as the step's ReLU layers, the
calibrator's policy between steps, and each layer's new level in the records of the
next step.

A training loop with a processor whose cores sample (``CoreConfig.eors_sample_log2``
> 0) and predict in scale-aware mode (``CoreConfig.eors.rel`` set) calls, after each
step's DONE::

    cal = EorsCalibration(program)              # once, after compiling the step
    ...
    await cal.step_driver(driver)               # reads and clears the bank, sets levels

and runs the next step with ``program.records`` (the driver loads them each step).

Sampling keys: :func:`set_eors_keys` gives every EORS record the key of its gemm (a
hash of the gemm's name, XOR the step's seed) plus the gemm row its record starts at,
so a gemm's sample set is the same however the compiler cut it into records and
however the scheduler splits them (``docs/eors.md``, "Sampling");
:class:`EorsCalibration` keys the program with a new seed each step.
"""

import zlib

from ..core.config import check_int, check_type
from ..model.eors import EorsCalibrator, ONE_SETTING, ONE_SETTING_EORS, ONE_SETTING_RATE_LOG2, mix16
from ..processor.program import TaskKind, EORS_SLOTS

__all__ = ["eors_layers", "set_eors_levels", "set_eors_keys", "gemm_key", "EorsCalibration",
           "ONE_SETTING_EORS", "ONE_SETTING_RATE_LOG2", "calibration_config"]


def calibration_config(cfg):
    """``cfg`` (a ProcessorConfig) with its cores switched to the one setting:
    scale-aware EORS (:data:`ONE_SETTING_EORS`) sampling 1 in 2**:data:`ONE_SETTING_RATE_LOG2`."""
    import dataclasses
    from ..processor.config import ProcessorConfig
    check_type("cfg", cfg, ProcessorConfig)
    return dataclasses.replace(cfg, core=dataclasses.replace(
        cfg.core, eors=ONE_SETTING_EORS, eors_sample_log2=ONE_SETTING_RATE_LOG2))


def _eors_tasks(program):
    for t in program.tasks:
        r = t.record
        if t.kind == TaskKind.GEMM and r["eors"]:
            yield t, t.gemm.split("/")[1]


def eors_layers(program):
    """``{slot: layer}`` of a compiled step (:func:`ganpu.host.compiler.compile_step`):
    the calibration slot of each ReLU layer with EORS (``"G.fc1"``, ...)."""
    out = {}
    for t, layer in _eors_tasks(program):
        slot = t.record["eors_slot"]
        if out.setdefault(slot, layer) != layer:
            raise ValueError(f"slot {slot} holds layers {out[slot]!r} and {layer!r}")
    return out


def set_eors_levels(program, levels):
    """Give every EORS record of layer ``L`` the level ``levels[L]`` (1..31; 0 = the
    cores' configured level), in place; layers not in ``levels`` keep theirs."""
    for t, layer in _eors_tasks(program):
        if layer in levels:
            q = levels[layer]
            if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 31:
                raise ValueError(f"level of {layer!r} must be an int in 0..31, not {q!r}")
            t.record["eors_rel"] = q


def gemm_key(gemm):
    """The 16-bit sampling key of the gemm named ``gemm`` (a compiled task's ``gemm``,
    e.g. ``"d_update/G.fc1/fp"``): ``mix16`` of the low 16 bits of its CRC-32."""
    return mix16(zlib.crc32(gemm.encode()) & 0xFFFF)


def set_eors_keys(program, seed=0):
    """Give every EORS record of ``program`` the sampling key
    ``((gemm_key(gemm) ^ seed) + row0) mod 2**16``, ``row0`` the first row of its
    gemm the record computes, in place: row ``m`` of a gemm samples with key
    ``(gemm_key ^ seed) + m`` in whichever record and on whichever core it runs."""
    check_int("seed", seed, 0, 0xFFFF)
    for t, _ in _eors_tasks(program):
        row0 = t.rows[0] if t.rows is not None else 0
        t.record["eors_key"] = ((gemm_key(t.gemm) ^ seed) + row0) & 0xFFFF


class EorsCalibration:
    """Self-calibration of a compiled step's EORS levels from the processor's counter
    bank, one layer per slot.

    ``calibrator`` defaults to :class:`~ganpu.model.eors.EorsCalibrator` with the
    cores' scale-aware parameters, their sampling rate, the study's policy
    (:data:`~ganpu.model.eors.ONE_SETTING`) and ``q_min`` = 1 (a record's level 0
    means "the configured level", so the host never writes it). The records start at
    the calibrator's start level (``cfg.core.eors.rel``).

    Each step samples with other outputs: the program's keys are set with seed ``seed``
    (0..65535) at first and ``seed + s`` (mod 2**16) for step ``s`` (:func:`set_eors_keys`).
    :attr:`history` lists the levels chosen after each step.
    """

    def __init__(self, program, calibrator=None, seed=0):
        from ..host.compiler import Program
        self.program = check_type("program", program, Program)
        cfg = program.cfg
        if calibrator is None:
            if cfg.core.eors.rel is None or cfg.core.eors_sample_log2 == 0:
                raise ValueError(f"self-calibration needs sampling, scale-aware cores; config has "
                                 f"eors={cfg.core.eors!r}, eors_sample_log2={cfg.core.eors_sample_log2!r}")
            calibrator = EorsCalibrator(cfg.core.eors, rate_log2=cfg.core.eors_sample_log2, q_min=1,
                                        **ONE_SETTING)
        self.cal = check_type("calibrator", calibrator, EorsCalibrator)
        self.layers = eors_layers(program)
        self.seed = check_int("seed", seed, 0, 0xFFFF)
        self.steps, self.history = 0, []
        set_eors_levels(program, {layer: self.cal.params_for(layer).rel for layer in self.layers.values()})
        set_eors_keys(program, seed)

    def step(self, bank):
        """Feed one step's bank (a list of ``EORS_SLOTS`` counter dicts, as
        :meth:`ganpu.host.processor_driver.ProcessorDriver.read_eors_bank` returns) to
        the calibrator, apply its rule and write each layer's new level into the
        records. Returns ``{layer: level}``."""
        if len(bank) != EORS_SLOTS:
            raise ValueError(f"bank must have {EORS_SLOTS} slots, not {len(bank)!r}")
        for slot, layer in self.layers.items():
            self.cal.add(layer, bank[slot])
        q = self.cal.end_step()
        levels = {layer: q[layer] for layer in self.layers.values()}
        set_eors_levels(self.program, levels)
        self.steps += 1
        set_eors_keys(self.program, (self.seed + self.steps) & 0xFFFF)
        self.history.append(levels)
        return levels

    async def step_driver(self, driver):
        """:meth:`step` on the bank read (and cleared) through ``driver``."""
        return self.step(await driver.read_eors_bank(clear=True))
