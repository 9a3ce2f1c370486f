"""EORS self-calibration on the processor (``docs/eors.md``, ``docs/memory-map.md``):
the task record's ``eors_rel`` and ``eors_slot``, the calibration counter bank as CSRs
against :func:`ganpu.processor.model.eors_bank`, the driver's read and the host's
calibration step."""

import dataclasses

import numpy as np
import pytest

from ganpu.core.descriptor import Op, Act, descriptor_layout
from ganpu.model.eors import EorsParams
from ganpu.processor.config import CONFIGS, config
from ganpu.processor.model import core_descriptor, normalize, pack_record, unpack_record
from ganpu.processor.program import (task_layout, update_layout, record_words, EORS_SLOTS,
                                     EORS_SLOT_BITS, TaskKind)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_record_fields_fit(name):
    """The EORS fields come after every older field (their offsets unchanged) and the
    record still fits its bus words; an UPDATE record's fields keep their offsets."""
    cfg = config(name)
    lay = task_layout(cfg)
    assert lay["eors_rel"].width == 5 and lay["eors_slot"].width == EORS_SLOT_BITS
    assert lay["eors_rel"].offset == lay["words"].offset + 24
    assert lay["eors_slot"].offset == lay["eors_rel"].offset + 5
    assert lay.size <= 16 * record_words(cfg)
    assert update_layout(cfg).size <= 16 * record_words(cfg)
    rec = {"kind": TaskKind.GEMM.value, "eors_rel": 31, "eors_slot": EORS_SLOTS - 1, "m": 1}
    assert unpack_record(cfg, pack_record(cfg, rec)) == normalize(cfg, rec)


def test_descriptor_takes_eors_rel():
    cfg = config("small")
    rec = normalize(cfg, {"kind": 0, "op": Op.FP.value, "act": Act.RELU.value, "eors": 1,
                          "m": 2, "n": 3, "k": 4, "eors_rel": 13})
    d = core_descriptor(rec)
    assert d["eors_rel"] == 13
    descriptor_layout(cfg.core.geom).const(d)   # every field fits the core's descriptor


def test_compiler_slots_and_levels():
    """One slot per ReLU layer (G's then D's), the level per layer, both 0 on every
    task that is not an EORS task."""
    from ganpu.gan.train import GAN, TrainConfig
    from ganpu.host.compiler import compile_step, mlp_layers
    cfg = config("sim")
    gan = GAN(TrainConfig(eors=cfg.core.eors))
    G, D = mlp_layers(gan.G), mlp_layers(gan.D)
    relu = [f"{n}.{layer[0]}" for n, net in (("G", G), ("D", D)) for layer in net if layer[3] == "relu"]
    assert relu
    levels = {layer: 3 + i for i, layer in enumerate(relu)}
    p = compile_step(cfg, G, D, gan.cfg.batch, cfg.core.eors, eors_rel=levels)
    seen = set()
    for t in p.tasks:
        r = t.record
        if r["kind"] == TaskKind.GEMM and r["eors"]:
            layer = t.gemm.split("/")[1]
            assert r["eors_slot"] == relu.index(layer) and r["eors_rel"] == levels[layer], t.name
            seen.add(layer)
        elif r["kind"] == TaskKind.GEMM:
            assert r["eors_slot"] == 0 and r["eors_rel"] == 0, t.name
    assert seen == set(relu)
    plain = compile_step(cfg, G, D, gan.cfg.batch, None)
    assert all(t.record.get("eors_slot", 0) == 0 and t.record.get("eors_rel", 0) == 0
               for t in plain.tasks)
