"""Fast checks of the reference GANs, the export and the quality score."""

import numpy as np
import pytest

from ganpu.gan import GAN, TrainConfig, DigitScorer, export_layers, save_export
from ganpu.model import gemm, epilogue, DEFAULT_EORS


def test_export_deterministic_and_replays():
    a = export_layers("mlp", steps=(0,), batch=8, seed=3)
    b = export_layers("mlp", steps=(0,), batch=8, seed=3)
    c = export_layers("mlp", steps=(0,), batch=8, seed=4)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        for f in ("A", "B", "init", "acc", "out", "mask_out"):
            assert np.array_equal(a[k][f], b[k][f]), (k, f)
    assert any(not np.array_equal(a[k]["A"], c[k]["A"]) for k in a)
    # every record replays bit for bit through gemm + epilogue
    for k, r in a.items():
        acc = gemm(r["A"], r["B"], r["init"])
        out, mo = epilogue(acc, r["act"], r["slope16"], r["mask_in"], phase=r["epi_phase"])
        assert np.array_equal(acc, r["acc"]) and np.array_equal(out, r["out"]), k
        assert np.array_equal(mo, r["mask_out"]), k
    phases = {k.rsplit("/", 1)[1] for k in a}
    assert phases == {"fp", "bp", "wg", "db"}


def test_export_conv_eors_and_save(tmp_path):
    rec = export_layers("conv", steps=(0,), batch=4, seed=0, eors=DEFAULT_EORS)
    fp_relu = [r for k, r in rec.items() if k.endswith("/fp") and r["act"] == "relu"]
    assert fp_relu and all(r["mask_in"] is not None for r in fp_relu)
    assert any(r["structural"] > 0 for k, r in rec.items() if r["kind"] == "tconv")
    path = save_export(tmp_path / "e.npz", rec)
    with np.load(path) as z:
        k = next(iter(rec))
        assert np.array_equal(z[f"{k}|A"], rec[k]["A"])


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_training_steps_finite(net):
    gan = GAN(TrainConfig(net=net, batch=8, seed=1, eors=DEFAULT_EORS if net == "mlp" else None))
    w0 = gan.G.layers[0].w32.copy()
    hist = gan.train(3)
    assert all(np.isfinite(h["d_loss"]) and np.isfinite(h["g_loss"]) for h in hist)
    assert not np.array_equal(gan.G.layers[0].w32, w0)
    assert np.all(np.isfinite(gan.sample(16)))


def test_quality_real_beats_noise():
    sc = DigitScorer(seed=0)
    real, noise = sc.score(sc.X_heldout), sc.score(sc.noise(300))
    assert real["confidence"] > noise["confidence"]
    assert real["fd"] < noise["fd"]
    assert real["classes"] == 10


def test_config_validation_message():
    with pytest.raises(ValueError, match="'gru'"):
        TrainConfig(net="gru")
