"""Training with every gemm and every weight update on the processor (``ganpu train
--device``, ``docs/update.md``): the program model backend and the RTL of a small
config, bit-identical to the golden model's ``GAN.step``."""

import re

import numpy as np
import pytest

import harness
from ganpu.gan import GAN, TrainConfig
from ganpu.gan.train import DeviceTrainer
from ganpu.processor.processor import Processor

from trainnets import CFG, tiny_gan, calibrator, transposed_bw


def _same(ref, hw):
    for net in ("G", "D"):
        opt_r, opt_h = (ref.opt_g, hw.opt_g) if net == "G" else (ref.opt_d, hw.opt_d)
        for a, b in zip(getattr(ref, net).layers, getattr(hw, net).layers):
            for t in ("w", "b"):
                assert np.array_equal(getattr(a, f"{t}32").view(np.uint32), getattr(b, f"{t}32").view(np.uint32))
                assert np.array_equal(np.asarray(opt_r.v[(a.name, f"{t}32")]).view(np.uint32),
                                      np.asarray(opt_h.v[(b.name, f"{t}32")]).view(np.uint32))
                assert np.array_equal(getattr(a, f"{t}16"), getattr(b, f"{t}16"))


def test_device_model_bit_identical():
    """The digits GAN, 3 steps on the processor model (batch 16 fits the sim config's
    GBUF with masters and momenta): losses, masters, momenta and weights equal."""
    ref, hw = GAN(TrainConfig(batch=16)), GAN(TrainConfig(batch=16))
    with DeviceTrainer(hw, "model", "sim") as tr:
        got = tr.train(3)
    assert got == ref.train(3)
    _same(ref, hw)


def test_device_model_tiny():
    ref, hw = tiny_gan(), tiny_gan()
    with DeviceTrainer(hw, "model", CFG) as tr:
        assert tr.train(2) == ref.train(2)
    _same(ref, hw)


def test_device_model_calibrated():
    """Self-calibration on the program model: the levels move, every step's bank is
    :func:`eors_bank` of the step's program (whatever the policy), the training is
    deterministic, and the calibrated run differs from a fixed-level one only through
    the levels (the sampled outputs stay +0)."""
    from ganpu.host.calibrate import EorsCalibration
    runs = []
    for _ in range(2):
        gan = tiny_gan(eors=CFG.core.eors)
        with DeviceTrainer(gan, "model", CFG, calibrate=calibrator()) as tr:
            hist = tr.train(3)
        runs.append((hist, tr.levels, gan))
    (h1, l1, g1), (h2, l2, g2) = runs
    assert h1 == h2 and l1 == l2 and len(l1) == 3
    assert any(q != CFG.core.eors.rel for lv in l1 for q in lv.values()), l1
    _same(g1, g2)
    with pytest.raises(ValueError, match=r"self-calibration needs sampling, scale-aware cores"):
        import dataclasses
        plain = dataclasses.replace(CFG, core=dataclasses.replace(CFG.core, eors_sample_log2=0))
        DeviceTrainer(tiny_gan(eors=CFG.core.eors), "model", plain, calibrate=True)
    # the keys: one gemm's records continue each other's rows; a new seed each step
    gan = tiny_gan(eors=CFG.core.eors)
    with DeviceTrainer(gan, "model", CFG) as tr:
        cal = EorsCalibration(tr.program, calibrator())
        fake = [t for t in tr.program.tasks if t.name.startswith("d/D.fc1/fp")]
        assert [t.record["eors_key"] - t.rows[0] for t in fake][0] == \
            [t.record["eors_key"] - t.rows[0] for t in fake][1]
        before = [t.record.get("eors_key") for t in tr.program.tasks]
        cal.step([dict.fromkeys(("live", "false_live", "sampled", "false_zero"), 0)] * 8)
        assert before != [t.record.get("eors_key") for t in tr.program.tasks]


def test_cli_calibrate(tmp_path, capsys):
    """``ganpu train --eors calibrate``: needs a device; on the model it trains with the
    cores at the one setting and prints the levels it ends with."""
    from ganpu.cli import main
    assert main(["train", "--eors", "calibrate", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "--eors calibrate needs --device" in capsys.readouterr().err
    assert main(["train", "--device", "model", "--eors", "calibrate", "--steps", "2", "--batch", "2",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cores at the EORS one setting" in out
    assert "EORS levels after calibration: D.fc1 " in out


def test_messages():
    with pytest.raises(TypeError, match="gan must be a GAN, got 'x'"):
        DeviceTrainer("x")
    with pytest.raises(ValueError, match="device must be 'model', 'sim' or a serial URL, got ''"):
        DeviceTrainer(GAN(TrainConfig(batch=2)), "")
    with pytest.raises(ValueError, match=r"beyond the GBUF of 262144 words \(gbuf_bits=18\)"):
        DeviceTrainer(GAN(TrainConfig(batch=32)), "model", "sim")
    with pytest.raises(ValueError, match="binary is for device 'sim', got device 'model'"):
        DeviceTrainer(GAN(TrainConfig(batch=2)), "model", binary="ganpu-sim")
    for name in ("timeout", "wait_timeout"):
        with pytest.raises(ValueError, match=f"{name} must be a positive number of seconds, got 0"):
            DeviceTrainer(GAN(TrainConfig(batch=2)), "model", **{name: 0})


def test_link_wait_is_bounded_in_seconds():
    """Over a link the driver's waits for DONE or a PAUSE last as long as the program
    runs, up to ``wait_timeout`` seconds, then fail naming the state the device is in."""
    import asyncio
    from ganpu.gan.train import _link_driver
    from ganpu.host.processor_driver import BusTransport
    from ganpu.processor.program import State

    class Running(BusTransport):
        polls = 0

        async def request(self, addr, write, data=0):
            self.polls += 1
            return State.RUNNING.value, 0

    t = Running()
    drv = _link_driver(t, CFG, 0.2)
    with pytest.raises(TimeoutError, match=r"processor still RUNNING after 0.2 s \(waiting for "
                                           r"DONE, PAUSED\)"):
        asyncio.run(drv.wait())
    assert t.polls > 1


def test_sim_gbuf_bits_is_checked(capsys):
    """``ganpu sim --gbuf-bits`` (the digits step needs 19 on ``sim``) refuses a bad
    value before building anything."""
    from ganpu.cli import main
    assert main(["sim", "--config", "sim", "--gbuf-bits", "40"]) == 2
    assert "ganpu sim: gbuf_bits must be in 8..22, not 40" in capsys.readouterr().err


def test_cli_device_model(tmp_path):
    from ganpu.cli import main
    assert main(["train", "--device", "model", "--steps", "2", "--batch", "8",
                 "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "losses_mlp_eors-off_s0_model.png", "samples_mlp_eors-off_s0_model.png"]


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_train_rtl(sim):
    """One step (Icarus: the first update, momentum from -0) or three (Verilator: every
    policy, momenta carried) of a small GAN on the processor's Verilog: the losses of
    every step, then every master, momentum and weight equal the golden model's. Then
    (same build) one step (Icarus) or three (Verilator) of the GAN with EORS
    self-calibration between steps, a policy per step: the per-layer levels after every step, the losses and
    every master, momentum and weight equal the program model's. The config's host port
    (2 elements) is narrower than its BW words (4 EORS lanes): the EORS records' BW
    passes take the DMA's transposed mode with several parts per BW word."""
    # the EORS records' BW passes are transposed, W = 2 elements into BW words of P = 4
    # lanes: two W-parts in one P-group, every k of K > 1 (the lane offset on Verilog)
    from ganpu.host.compiler import compile_gan
    W, P = CFG.core.host_words, CFG.core.eors_lanes
    tr = transposed_bw(CFG, [t.record for t in compile_gan(CFG, tiny_gan(eors=CFG.core.eors),
                                                            update=True).tasks])
    assert W < P and any(n >= 2 * W and k > 1 for n, k in tr), (W, P, tr)
    steps = {"icarus": 1, "verilator": 3}[sim]
    cal = {"icarus": 1, "verilator": 3}[sim]
    harness.run(sim, Processor(CFG), "ganpu_processor_train", "tb_train",
                env={"GANPU_STEPS": max(steps, int(steps * harness.scale())),
                     "GANPU_CAL_STEPS": max(cal, int(cal * harness.scale()))})


def test_bench_train(tmp_path):
    """``ganpu bench train`` on the program model: bit-identical, and its figures add up
    (the D and G updates make the step; dense work takes at least the measured cycles;
    the effective rate is dense FLOPs over the step time)."""
    import json
    from ganpu.cli import main
    out = tmp_path / "train.json"
    assert main(["bench", "train", "--steps", "1", "--batch", "8", "--gbuf-bits", "18",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["bit_identical"] and res["updates"] == 12 and res["parameters"] == 34305
    for p, r in res["policies"].items():
        m, d = r["measured"], r["dense"]
        assert m["d_update"] + m["g_update"] == m["cycles"] and 0 < m["d_update"] < m["cycles"]
        assert d["cycles"] >= m["cycles"] and r["speedup"] == round(d["cycles"] / m["cycles"], 4)
        gflops = 2 * res["dense_macs"] / (m["cycles"] / (res["mhz"] * 1e6)) / 1e9
        assert abs(m["effective_gflops"] - gflops) < 1e-3
    assert res["dense_peak_gflops"] == res["cores"] * res["lanes"] * 2 * res["mhz"] * 1e-3


def test_device_model_warm_start():
    """A device taking over a GAN the golden model has trained (weights, masters,
    momenta and data stream mid-run, written by the first device step) trains on bit
    for bit as the device that ran every step: 2 golden + 1 device step against 3
    device steps, EORS off and on."""
    for eors in (None, CFG.core.eors):
        warm, ref = tiny_gan(eors=eors), tiny_gan(eors=eors)
        warm.train(2)
        with DeviceTrainer(warm, "model", CFG) as tr:
            tr.train(1)
        with DeviceTrainer(ref, "model", CFG) as tr:
            tr.train(3)
        assert warm.history == ref.history
        _same(ref, warm)


def test_bench_train_warmup(tmp_path, capsys):
    """``ganpu bench train --warmup N``: N golden steps, then the measured steps on the
    device; the measured steps' losses and the final weights, masters and momenta
    (``weights_sha256``) are those of a fresh GAN trained N + steps steps on the golden
    model. The sparsity figures are shares. Bad values: clear messages."""
    import json
    from ganpu.bench_train import bench_train, state_digest
    from ganpu.cli import main
    out = tmp_path / "train.json"
    assert main(["bench", "train", "--steps", "1", "--batch", "4", "--gbuf-bits", "18",
                 "--warmup", "2", "--json", str(out)]) == 0
    assert "1 steps after 2 warm-up steps on the golden model" in capsys.readouterr().out
    res = json.loads(out.read_text())
    gan = GAN(TrainConfig(batch=4))
    gan.train(3)
    assert res["bit_identical"] and res["warmup"] == 2 and res["losses"] == gan.history[2:]
    assert res["weights_sha256"] == state_digest(gan)
    sp = res["sparsity"]
    assert sp["relu_outputs"] > 0 and sp["skipped"] == 0
    # --host-words: the same steps on cores with a wider host port (the DMA's width)
    out16 = tmp_path / "train16.json"
    assert main(["bench", "train", "--steps", "1", "--batch", "4", "--gbuf-bits", "18",
                 "--warmup", "2", "--host-words", "16", "--json", str(out16)]) == 0
    capsys.readouterr()
    res16 = json.loads(out16.read_text())
    assert res16["config"] == "sim, host_words 16" and res["host_words"] == 8 and res16["host_words"] == 16
    assert res16["bit_identical"] and res16["weights_sha256"] == res["weights_sha256"]
    assert (res16["policies"]["temporal"]["measured"]["dma_cycles"]
            < res["policies"]["temporal"]["measured"]["dma_cycles"])
    assert all(0 <= sp[k] <= 1 for k in ("input_zeros", "true_zero", "false_zero", "recall"))
    for kw, err, msg in (({"warmup": -1}, ValueError, "warmup must be in >= 0, not -1"),
                         ({"warmup": "2"}, TypeError, "warmup must be an int, not '2'"),
                         ({"steps": 0}, ValueError, "steps must be in >= 1, not 0"),
                         ({"host_words": 3}, ValueError, "host_words must be a power of two, not 3"),
                         ({"policy": "fast"}, ValueError, "policy must be one of "
                          "('temporal', 'spatial', 'adaptive'), got 'fast'"),
                         ({"eors": "calibrate", "warmup": 1}, ValueError,
                          "warmup with eors 'calibrate' is not supported, got warmup=1")):
        with pytest.raises(err, match=re.escape(msg)):
            bench_train(batch=2, **kw)
    assert main(["bench", "train", "--eors", "calibrate", "--warmup", "3"]) == 2
    assert "ganpu bench train: warmup with eors 'calibrate' is not supported" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "train", "--warmup", "-1"])
    assert "expected a non-negative integer, not '-1'" in capsys.readouterr().err


def test_bench_train_eors(tmp_path):
    """``ganpu bench train --eors on``: the measured step counts the work the cores do
    (predicted zeros skipped), so it is no slower than the same step computing every
    output of its EORS records, and no schedule beats the bound (surviving MACs on every
    lane plus the update engine's cycles)."""
    import json
    from ganpu.cli import main
    out = tmp_path / "train.json"
    assert main(["bench", "train", "--steps", "1", "--batch", "8", "--gbuf-bits", "18",
                 "--eors", "on", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["bit_identical"] and res["eors"] is True
    lanes = res["cores"] * res["lanes"]
    b = res["bound"]
    assert b["cycles"] >= b["surviving_macs"] // lanes + b["update_cycles"]
    assert b["of_dense_peak"] == round(res["dense_macs"] / (lanes * b["cycles"]), 4)
    for p, r in res["policies"].items():
        m = r["measured"]["cycles"]
        assert b["cycles"] <= m <= r["every_output"]["cycles"] <= r["dense"]["cycles"], p
