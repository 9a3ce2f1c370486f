"""Convolutions on the core's task model (fast, pure Python): every conv and transposed
conv phase (FP, BP, WG) lowered by :func:`ganpu.host.lower.conv_tasks` and run by
:func:`ganpu.core.model.run_task` reproduces the golden layer (:mod:`ganpu.model.layers`)
bit for bit, on random shapes and on a real conv-GAN training step; the address
function enumerates exactly the non-structural entries of the golden im2col; the
checker's convolution codes (stride and dilation 1 or 2 only)."""

import numpy as np
import pytest

from ganpu import numerics
from ganpu.core import CoreConfig, Geometry, model, im2col
from ganpu.core.descriptor import Error, ConvMode
from ganpu.host.lower import ConvShape, conv_tasks, fc_desc
from ganpu.host.tasks import conv_record_phases
from ganpu.model.layers import Conv2d, ConvTranspose2d

ACTS = {"identity": 0, "relu": 1, "leaky": 2}


def run_conv_tasks(tasks, transposed, shape_mn, config):
    """Golden-shaped ``(out, mask_out)`` from the tasks' OUT and MASK_OUT."""
    out = np.zeros(shape_mn, np.uint16)
    mask = np.zeros(shape_mn, bool)
    for desc, loads, (m0, m1), (n0, n1) in tasks:
        bufs = config.zero_buffers()
        for name, (base, v) in loads.items():
            bufs[name][base:base + len(v)] = v
        err, new = model.run_task(desc, bufs, config.geom)
        assert err == Error.OK, f"{err!r} {({f: v for f, v in desc.items() if v})!r}"
        mt, n = m1 - m0, n1 - n0
        assert desc["n"] == n
        o, mo = new["out"][:mt * n], new["mask_out"][:mt * n].astype(bool)
        if transposed:
            # OUT column-major; the masks stay dense in the core's (m, n)
            out[n0:n1, m0:m1], mask[n0:n1, m0:m1] = o.reshape(n, mt), mo.reshape(mt, n).T
        else:
            out[m0:m1, n0:n1], mask[m0:m1, n0:n1] = o.reshape(mt, n), mo.reshape(mt, n)
    return out, mask


def layer_records(layer, x, dz, in_act, in_mask, in_slope16):
    """The golden records of FP, BP and WG of ``layer`` (hook dicts by phase)."""
    recs = {}
    layer.hooks.append(lambda _l, ph, t: recs.setdefault(ph, t))
    layer.fp(x)
    layer.wg(dz)
    layer.bp(dz, in_act, in_mask, in_slope16)
    layer.hooks.clear()
    return recs


def check_layer(layer, x, dz, in_act="relu", in_mask=None, in_slope16=None, config=None,
                what=""):
    """Lower each phase of ``layer`` and compare the task model with the golden model."""
    config = config or CoreConfig()
    recs = layer_records(layer, x, dz, in_act, in_mask, in_slope16)
    shape = ConvShape.of_layer(layer, x.shape[0], x.shape[2:])
    phases = {
        "fp": dict(x=x, w=layer.w16, b=layer.b16, act=ACTS[layer.act], slope=layer.slope16 or 0),
        "bp": dict(dz=dz, w=layer.w16, act=ACTS[in_act], slope=in_slope16 or 0,
                   mask=recs["bp"]["mask_in"]),
        "wg": dict(x=x, dz=dz),
    }
    ntasks = 0
    for phase, kw in phases.items():
        rec = recs[phase]
        tasks, transposed = conv_tasks(shape, phase, config.geom, **kw)
        ntasks += len(tasks)
        out, mask = run_conv_tasks(tasks, transposed, rec["out"].shape, config)
        np.testing.assert_array_equal(out, rec["out"], err_msg=f"{what} {phase} out")
        np.testing.assert_array_equal(mask, rec["mask_out"], err_msg=f"{what} {phase} mask")
    return ntasks


def random_f16(rng, shape, zeros=0.3):
    v = numerics.f16_bits((rng.standard_normal(shape) * 0.5).astype(np.float32))
    return np.where(rng.random(shape) < zeros, np.uint16(0), v).astype(np.uint16)


def random_layer(rng, i):
    kind = ["conv", "tconv"][i % 2]
    k = int(rng.integers(1, 6))
    s = int(rng.integers(1, 3))
    p = int(rng.integers(0, min(2, k - 1) + 1))
    cin, cout = (int(rng.integers(1, 17)) for _ in range(2))
    act = str(rng.choice(["identity", "relu", "leaky"]))
    if kind == "conv":
        h = int(rng.integers(max(1, k - 2 * p), 10))
        layer = Conv2d("c", cin, cout, k, s, p, act=act, rng=rng)
        ho = (h + 2 * p - k) // s + 1
    else:
        h = int(rng.integers(1, 7))
        op = int(rng.integers(0, s))
        layer = ConvTranspose2d("t", cin, cout, k, s, p, op, act=act, rng=rng)
        ho = (h - 1) * s - 2 * p + k + op
    return layer, h, ho


def test_random_conv_shapes_equal_golden():
    """Kernel 1-5, stride 1-2, padding 0-2, channels 1-16, odd sizes, every activation;
    BP through a stored ReLU or LeakyReLU mask."""
    rng = np.random.default_rng(12)
    for i in range(24):
        layer, h, ho = random_layer(rng, i)
        b = int(rng.integers(1, 4))
        x = random_f16(rng, (b, layer.cin, h, h))
        dz = random_f16(rng, (b, layer.cout, ho, ho))
        in_act = str(rng.choice(["identity", "relu", "leaky"]))
        in_mask = rng.random((b, layer.cin, h, h)) < 0.6
        slope16 = int(numerics.f16_bits(0.2)[()]) if in_act == "leaky" else None
        check_layer(layer, x, dz, in_act, in_mask if in_act != "identity" else None, slope16,
                    what=f"case {i} {layer.describe()} h={h} b={b}")


def test_tiling_small_buffers_equals_golden():
    """A small core: the layers are split into image, output-row and kernel-row tiles."""
    rng = np.random.default_rng(3)
    config = CoreConfig(lanes=2, eors_lanes=4, geom=Geometry(a_bits=9, b_bits=10, out_bits=9,
                                                             bias_bits=5, mask_bits=9))
    for kind in ("conv", "tconv"):
        cls = Conv2d if kind == "conv" else ConvTranspose2d
        layer = cls("l", 4, 6, 4, 2, 1, act="relu", rng=rng)
        h = 8 if kind == "conv" else 4
        ho = 4 if kind == "conv" else 8
        x = random_f16(rng, (3, 4, h, h))
        dz = random_f16(rng, (3, 6, ho, ho))
        n = check_layer(layer, x, dz, "relu", rng.random((3, 4, h, h)) < 0.5, config=config,
                        what=kind)
        assert n > 6, n  # tiled


def test_address_function_is_the_golden_im2col():
    """The valid taps are exactly the non-structural entries of the golden im2col, and
    each reads the input pixel the golden model put there."""
    from ganpu.model.layers import im2col as golden_im2col, pad, dilate
    rng = np.random.default_rng(5)
    for _ in range(20):
        k, s, p, dil = int(rng.integers(1, 6)), int(rng.integers(1, 3)), 0, int(rng.integers(1, 3))
        p = int(rng.integers(0, k))
        h, w, c, b = (int(rng.integers(1, 6)) for _ in range(4))
        hi = int(rng.integers(0, 2))
        ind = np.arange(1, b * c * h * w + 1).reshape(b, c, h, w)
        xp = pad(dilate(ind, dil), p, p + hi)
        if xp.shape[2] < k or xp.shape[3] < k:
            continue
        cols, (ho, wo) = golden_im2col(xp, k, s)
        desc = fc_desc(conv=ConvMode.ROWS.value, kern=k, cstride=s, dil=dil, pad=p, img=b, chan=c,
                       in_h=h, in_w=w, out_h=ho, out_w=wo, a_sm=c * h * w, a_sk=h * w,
                       m=b * ho * wo, k=c * k * k)
        valid, a_addr, _ = im2col.tap_table(desc)
        np.testing.assert_array_equal(valid, cols != 0)
        np.testing.assert_array_equal(np.where(valid, a_addr + 1, 0), cols)


def test_task_taps_is_the_count_of_valid_taps():
    """``im2col.task_taps`` (the checker's WORK_RANGE count) is exactly the number of
    valid taps of ``tap_table``, borders, dilation, bands of output rows (ROWS) and of
    kernel rows (TAPS) included; the lowering's tiles fill the compressed copy no
    further than the buffer, and a whole-image tile one image larger would not fit."""
    rng = np.random.default_rng(21)
    for i in range(300):
        mode = [ConvMode.ROWS, ConvMode.TAPS][i % 2]
        k, s = int(rng.integers(1, 8)), int(rng.integers(1, 3))
        dil = int(rng.integers(1, 3)) if mode == ConvMode.ROWS else 1
        h, w = (int(rng.integers(1, 9)) for _ in range(2))
        d = fc_desc(conv=mode.value, kern=k, cstride=s, dil=dil, pad=int(rng.integers(0, k)),
                    in_h=h, in_w=w, out_h=int(rng.integers(1, 9)), out_w=int(rng.integers(1, 9)),
                    img=int(rng.integers(1, 3)), chan=int(rng.integers(1, 3)), a_sm=h * w, a_sk=h * w)
        if mode == ConvMode.ROWS:
            d["oy0"] = int(rng.integers(0, 3))
        else:
            d["ky0"] = int(rng.integers(0, k))
            d["kh"] = int(rng.integers(1, k - d["ky0"] + 1))
        d["m"], d["k"] = (int(np.prod(x)) for x in im2col.dims(d))
        assert im2col.task_taps(d) == im2col.tap_table(d)[0].sum(), d
    geom = CoreConfig().geom
    shape = ConvShape("conv", 64, 16, 32, 4, 2, 1, (4, 4))
    for phase in ("fp", "bp", "wg"):
        tasks, _ = conv_tasks(shape, phase, geom, x=np.zeros(64 * 16 * 16, np.uint16),
                              dz=np.zeros(64 * 32 * 4, np.uint16), w=np.zeros(32 * 16 * 16, np.uint16))
        for d, *_ in tasks:
            assert 0 < im2col.task_taps(d) <= geom.depth("a")
            assert model.check(d, geom) == Error.OK
        d = max((t[0] for t in tasks), key=lambda d: d["img"])
        if phase != "wg":
            big = {**d, "img": d["img"] + 1}
            big["m"] = int(np.prod(im2col.dims(big)[0]))
            assert im2col.task_taps(big) > geom.depth("a"), phase


@pytest.fixture(scope="module")
def conv_step():
    from ganpu.gan.export import export_layers
    return export_layers(net="conv", steps=(0,), batch=32, seed=0)


def test_conv_gan_step_equals_golden(conv_step):
    """Every conv and tconv FP, BP and WG of a real conv-GAN training step, lowered from
    the layer's own tensors (no im2col copy), gives the exported results."""
    config = CoreConfig()
    n = 0
    for key, shape, phase, kw, rec in conv_record_phases(conv_step):
        tasks, transposed = conv_tasks(shape, phase, config.geom, **kw)
        out, mask = run_conv_tasks(tasks, transposed, rec["out"].shape, config)
        np.testing.assert_array_equal(out, rec["out"], err_msg=key)
        np.testing.assert_array_equal(mask, rec["mask_out"], err_msg=key)
        n += 1
    # FP of the 4 conv layers in both passes, WG of D's in the D update and of G's in
    # the G update, BP of all but G's first conv (D.conv1's only in the G update)
    assert n == 8 + 4 + 5, n


@pytest.mark.parametrize("kind", ["conv", "tconv"])
def test_eors_conv_fp_equals_golden(kind):
    """FP with ReLU and the core's EORS prediction gives the golden layer run with EORS
    (a tconv's kernel is then loaded flipped, so the speculator reads it by k)."""
    from ganpu.model.eors import DEFAULT_EORS
    rng = np.random.default_rng(21)
    config = CoreConfig()
    cls = Conv2d if kind == "conv" else ConvTranspose2d
    layer = cls("l", 5, 20, 3, 2, 1, act="relu", rng=rng)
    layer.b32[:] = rng.standard_normal(20).astype(np.float32) * 0.1
    layer.sync()
    x = random_f16(rng, (2, 5, 5, 5))
    recs = {}
    layer.hooks.append(lambda _l, ph, t: recs.setdefault(ph, t))
    layer.fp(x, eors=DEFAULT_EORS)
    rec = recs["fp"]
    shape = ConvShape.of_layer(layer, 2, (5, 5))
    tasks, transposed = conv_tasks(shape, "fp", config.geom, x=x, w=layer.w16, b=layer.b16,
                                   act=1, eors=True, eors_lanes=config.eors_lanes)
    assert all(d["eors"] for d, *_ in tasks)
    out, mask = run_conv_tasks(tasks, transposed, rec["out"].shape, config)
    np.testing.assert_array_equal(out, rec["out"])
    np.testing.assert_array_equal(mask, rec["mask_out"])
    assert 0 < mask.sum() < mask.size


def test_bench_conv_table():
    """``ganpu bench conv``'s summary and table from rows (the RTL run is the command's)."""
    import io
    from ganpu.bench_conv import summarize_conv, print_conv_table
    from ganpu.cli import build_parser
    rows = [dict(gemm="G.tconv2/fp", **{"pass": "d_update"}, kind="tconv", M=512, N=16, K=512,
                 structural_macs=3 * 2 ** 20, dense_macs=4 * 2 ** 20, surviving_macs=2 ** 20,
                 dense_cycles=2 ** 20, oracle_cycles=2 ** 18, measured=2 ** 18 + 2 ** 14,
                 measured_dense_layout=2 ** 18 + 2 ** 15, big=True),
            dict(gemm="D.conv1/wg", **{"pass": "d_update"}, kind="conv", M=16, N=16, K=1024,
                 structural_macs=0, dense_macs=2 ** 18, surviving_macs=2 ** 17,
                 dense_cycles=2 ** 16, oracle_cycles=2 ** 15, measured=2 ** 16,
                 measured_dense_layout=2 ** 15, big=False),
            # one output channel: outside the ">= 4x the array" rule, and out of the
            # structural-zero figure
            dict(gemm="G.tconv3/fp", **{"pass": "d_update"}, kind="tconv", M=2048, N=1, K=256,
                 structural_macs=2 ** 19, dense_macs=2 ** 19, surviving_macs=2 ** 16,
                 dense_cycles=2 ** 17, oracle_cycles=2 ** 14, measured=2 ** 17,
                 measured_dense_layout=2 ** 16, big=False)]
    s = summarize_conv(rows, 4)
    assert s["big_gemms"] == 1 and s["big_oracle_over_measured"] == 2 ** 18 / (2 ** 18 + 2 ** 14)
    assert s["tconv_fp_measured_over_dense_layout"] == (2 ** 18 + 2 ** 14) / (2 ** 18 + 2 ** 15)
    f = io.StringIO()
    print_conv_table(rows, s, file=f)
    assert "| G.tconv2/fp | d_update | 512x16x512 | 75% |" in f.getvalue()
    assert "D.conv1/wg (small)" in f.getvalue()
    args = build_parser().parse_args(["bench", "conv", "--json", "x.json"])
    assert args.json == "x.json" and args.lanes == 4


def test_stride_and_dilation_1_or_2():
    """The checker accepts stride and dilation 1 and 2 only (the Indexer multiplies and
    divides by them with 1-bit shifts, ``docs/conv.md``): a stride-2 conv FP and BP (dilation
    2) are accepted; the same tasks with 3, or 0, are refused with BAD_CONV."""
    rng = np.random.default_rng(8)
    geom = CoreConfig().geom
    shape = ConvShape("conv", 1, 2, 3, 3, 2, 1, (5, 5))
    fp, _ = conv_tasks(shape, "fp", geom, x=random_f16(rng, (1, 2, 5, 5)),
                       w=random_f16(rng, (3, 2, 3, 3)))
    bp, _ = conv_tasks(shape, "bp", geom, dz=random_f16(rng, (1, 3, 3, 3)),
                       w=random_f16(rng, (3, 2, 3, 3)))
    (f, *_), (b, *_) = fp[0], bp[0]
    assert (f["cstride"], f["dil"], b["cstride"], b["dil"]) == (2, 1, 1, 2)
    assert model.check(f, geom) == Error.OK and model.check(b, geom) == Error.OK
    for desc, field in ((f, "cstride"), (b, "dil"), (f, "dil"), (b, "cstride")):
        for v in (0, 3):
            assert model.check({**desc, field: v}, geom) == Error.BAD_CONV, (field, v)


def test_conv_shape_parameters():
    ok = dict(kind="conv", batch=1, cin=1, cout=1, k=3, stride=1, padding=1, in_hw=(4, 4))
    for bad, exc, msg in [
        (dict(kind="dense"), ValueError, r"^kind must be 'conv' or 'tconv', got 'dense'$"),
        (dict(batch=0), ValueError, r"^batch must be in >= 1, not 0$"),
        (dict(cin=1.0), TypeError, r"^cin must be an int, not 1\.0$"),
        (dict(k=8), ValueError, r"^k must be in 1\.\.7, not 8$"),
        (dict(stride=3), ValueError, r"^stride must be in 1\.\.2, not 3$"),
        (dict(padding=3), ValueError, r"^padding must be in 0\.\.2, not 3$"),
        (dict(kind="tconv", output_padding=1), ValueError, r"^output_padding must be in 0\.\.0, not 1$"),
        (dict(in_hw=4), TypeError, r"^in_hw must be a \(H, W\) pair, not 4$"),
        (dict(in_hw=(4, 0)), ValueError, r"^in_hw must be in >= 1, not 0$"),
        (dict(k=5, padding=0, in_hw=(3, 3)), ValueError,
         r"^conv with k=5, stride=1, padding=0 has no output for in_hw=\(3, 3\)$"),
    ]:
        with pytest.raises(exc, match=msg):
            ConvShape(**{**ok, **bad})
    assert ConvShape(**ok).out_hw == (4, 4)
    with pytest.raises(ValueError, match=r"^phase must be 'fp', 'bp' or 'wg', got 'db'$"):
        conv_tasks(ConvShape(**ok), "db", CoreConfig().geom, x=np.zeros(16, np.uint16))
    with pytest.raises(ValueError, match=r"needs dz$"):
        conv_tasks(ConvShape(**ok), "bp", CoreConfig().geom, w=np.zeros(9, np.uint16))


def test_bench_conv_tasks_are_accepted(conv_step):
    """Every task ``ganpu bench conv`` runs (conv mode and the dense layout) passes the
    checker of the core it runs on."""
    from ganpu.bench import _config
    from ganpu.bench_conv import _conv_runs
    config = _config(4)
    runs, gemms = _conv_runs(conv_step, config)
    assert len(gemms) == 17
    for tag, tasks in runs.items():
        for name, desc, loads in tasks:
            assert model.check(desc, config.geom, config.eors_lanes) == Error.OK, (tag, name)
            for buf, (base, v) in loads.items():
                assert base + len(v) <= config.depth(buf), (tag, name, buf)
