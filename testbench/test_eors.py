"""EORS predictor hardware: EorsLane and EorsPredictor checked bit for bit against
ganpu.model.eors (acc, forced and live of every sum, and the exact o_valid cycles).

* the lane on both simulators, for the default parameters and for pure exponent-only
  EORS (m = 0, threshold 0): random sums of length 1..200 over every operand class,
  sums that saturate both ways, terms below the LSB, sums landing on the threshold and
  its neighbours, bubbles, bubbles carrying first/last, term-less sums;
* the lane in the scale-aware mode (docs/eors.md) on both simulators: the same random
  and directed sums, each with its own level on the ``rel`` input, checking ``mag`` too;
* the predictor on both simulators against real FP ReLU gemms of the MLP GAN, in the
  absolute and the scale-aware mode;
* parameter validation, the model helpers and a few more parameter sets (narrow
  accumulator, no bias) on Amaranth's own simulator.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

import harness
import tb_eors
from ganpu.eors import EorsLane, EorsPredictor
from ganpu.model.eors import EorsParams, DEFAULT_EORS, eors_acc

PURE = EorsParams(m=0, threshold=0)
SCALE = EorsParams(threshold=0, rel=13)        # scale-aware mode (any level: it is an input)
PARAMS = {"default": DEFAULT_EORS, "pure": PURE, "scale": SCALE}
# approximate stream lengths in cycles per simulator run
CYCLES = {"verilator": 60_000, "icarus": 12_000}
# real-tensor outputs per run (lanes x sums)
OUTPUTS = {"verilator": 3_072, "icarus": 512}
PRED_LANES = 8


def _lengths(rng, budget):
    lengths = [1, 2, 3, 200, 200]
    while sum(lengths) < budget:
        # log-uniform: plenty of short sums, some long ones
        lengths.append(int(np.exp(rng.uniform(0, np.log(200)))))
    return lengths


def _lane_stream(rng, params, budget, lanes=1):
    jobs = tb_eors.random_jobs(rng, lanes, _lengths(rng, budget)) + tb_eors.directed_jobs(params, lanes)
    return tb_eors.make_stream(rng, jobs, params, lanes)


# the scale-aware lane's simulator runs take this share of CYCLES
SCALE_SHARE = 0.5


def _run(sim, dut, name, stream, expected, tmp_path, lanes):
    vec = tmp_path / "eors.npz"
    tb_eors.save_stream(vec, stream, expected)
    harness.run(sim, dut, name, "tb_eors",
                env={"GANPU_VECTORS": vec, "GANPU_LATENCY": dut.latency, "GANPU_LANES": lanes,
                     "GANPU_WIDTH": dut.params.width})


@pytest.mark.parametrize("which", list(PARAMS))
@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_lane(sim, which, tmp_path):
    params = PARAMS[which]
    rng = np.random.default_rng(2024)
    share = SCALE_SHARE if params.rel is not None else 1
    stream, expected = _lane_stream(rng, params, int(CYCLES[sim] * share * harness.scale()))
    _run(sim, EorsLane(params), f"eors_lane_{which}", stream, expected, tmp_path, 1)


def _relu_fp_records():
    from ganpu.gan.export import export_layers
    recs = export_layers(net="mlp", steps=(0,))
    out = [r for k, r in recs.items() if k.endswith("/fp") and r["act"] == "relu"]
    assert out, "the MLP export has no FP ReLU gemm"
    return out


@pytest.fixture(scope="module")
def relu_records():
    return _relu_fp_records()


@pytest.mark.parametrize("which", ["default", "scale"])
@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_predictor_real_tensors(sim, which, relu_records, tmp_path):
    params = PARAMS[which]
    rng = np.random.default_rng(5)
    share = SCALE_SHARE if params.rel is not None else 1
    jobs = tb_eors.tensor_jobs(relu_records, PRED_LANES, int(OUTPUTS[sim] * share * harness.scale()), rng)
    stream, expected = tb_eors.make_stream(rng, jobs, params, PRED_LANES, empty=1)
    # real data must exercise both predictions, or the test proves little
    live = expected["live"]
    assert live.any() and (~live).any()
    dut = EorsPredictor(lanes=PRED_LANES, params=params)
    suffix = "" if which == "default" else f"_{which}"
    _run(sim, dut, f"eors_predictor_x{PRED_LANES}{suffix}", stream, expected, tmp_path, PRED_LANES)


def test_stream_covers_cases():
    """The random lane stream really holds what the simulator runs rely on."""
    for params in PARAMS.values():
        rng = np.random.default_rng(2024)
        stream, exp = _lane_stream(rng, params, 6_000)
        acc, forced, live = exp["acc"][:, 0], exp["forced"][:, 0], exp["live"][:, 0]
        assert {1, 200} <= set(exp["length"].tolist()) and 0 in exp["length"]
        assert forced.any() and (~forced).any()
        free = ~forced
        assert (live & free).any() and (~live & free).any()
        for v in (params.threshold - 1, params.threshold, params.threshold + 1, params.hi, params.lo):
            assert (acc[free] == v).any(), f"no unforced sum ends at {v}"
        assert ((stream["valid"] == 0) & (stream["first"] == 1)).any()
        assert ((stream["valid"] == 0) & (stream["last"] == 1)).any()
        assert (stream["first"] == 1).sum() == len(exp["cycle"]) == (stream["last"] == 1).sum()


def test_stream_has_sub_lsb_terms():
    """Tiny operands give nonzero products whose terms truncate to 0."""
    rng = np.random.default_rng(1)
    x = tb_eors.operands(rng, 400, 3)
    w = tb_eors.operands(rng, 400, 3)
    acc, _ = eors_acc(x[:, None], w[:, None], None, DEFAULT_EORS)
    formed = ((x & 0x7FFF) != 0) & ((w & 0x7FFF) != 0)
    assert (formed & (acc[:, 0] == 0)).sum() > 100


def _amaranth_run(dut, stream, lanes):
    ncyc = len(stream["x"])
    scale = "rel" in stream
    fields = tb_eors.IN_FIELDS + (("rel",) if scale else ())
    rec = {"o_valid": [], "acc": [], "forced": [], "live": [], "mag": []}

    async def bench(ctx):
        for it in range(ncyc + dut.latency + 2):
            rec["o_valid"].append(ctx.get(dut.o_valid))
            a = ctx.get(dut.acc)
            rec["acc"].append([a] if lanes == 1 else [a[j] for j in range(lanes)])
            f, lv = ctx.get(dut.forced), ctx.get(dut.live)
            rec["forced"].append([(f >> j) & 1 for j in range(lanes)])
            rec["live"].append([(lv >> j) & 1 for j in range(lanes)])
            if scale:
                mg = ctx.get(dut.mag)
                rec["mag"].append([mg] if lanes == 1 else [mg[j] for j in range(lanes)])
            for k in fields:
                port = getattr(dut, k)
                if it >= ncyc:
                    ctx.set(port, [0] * lanes if k in ("w", "bias") and lanes > 1 else 0)
                elif k in ("w", "bias") and lanes > 1:
                    ctx.set(port, [int(v) for v in stream[k][it]])
                elif k in ("w", "bias"):
                    ctx.set(port, int(stream[k][it][0]))
                else:
                    ctx.set(port, int(stream[k][it]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return rec


@pytest.mark.parametrize("params", [
    DEFAULT_EORS, PURE,
    EorsParams(width=8, frac=3, m=2, threshold=1),
    EorsParams(width=12, frac=6, m=10, threshold=-5, use_bias=False),
    EorsParams(width=2, frac=0, m=1, threshold=0),
    SCALE,
    EorsParams(width=8, frac=3, m=0, threshold=-2, rel=3),
    EorsParams(width=12, frac=6, m=2, threshold=1, rel=0, use_bias=False),
    EorsParams(width=2, frac=0, m=1, threshold=0, rel=31),
], ids=repr)
def test_lane_amaranth_sim(params):
    """Short streams on Amaranth's simulator, including corners of the parameter space."""
    rng = np.random.default_rng(11)
    jobs = tb_eors.random_jobs(rng, 1, [1, 2, 5, 40, 17, 90]) + tb_eors.directed_jobs(params, 1)
    stream, expected = tb_eors.make_stream(rng, jobs, params, 1, bubble_p=0.2)
    rec = _amaranth_run(EorsLane(params), stream, 1)
    tb_eors.check_outputs(rec["o_valid"], rec["acc"], rec["forced"], rec["live"], expected,
                          EorsLane.latency, rec["mag"] if params.rel is not None else None)


@pytest.mark.parametrize("params", [DEFAULT_EORS, SCALE], ids=["default", "scale"])
def test_predictor_amaranth_sim(params):
    rng = np.random.default_rng(12)
    lanes = 3
    jobs = tb_eors.random_jobs(rng, lanes, [1, 7, 30, 64]) + tb_eors.directed_jobs(params, lanes)
    stream, expected = tb_eors.make_stream(rng, jobs, params, lanes, bubble_p=0.2)
    rec = _amaranth_run(EorsPredictor(lanes=lanes, params=params), stream, lanes)
    tb_eors.check_outputs(rec["o_valid"], rec["acc"], rec["forced"], rec["live"], expected,
                          EorsPredictor.latency, rec["mag"] if params.rel is not None else None)


def test_wrong_model_is_caught():
    """The checker rejects a model whose threshold is off by one."""
    rng = np.random.default_rng(2024)
    params = DEFAULT_EORS
    stream, expected = _lane_stream(rng, params, 2_000)
    rec = _amaranth_run(EorsLane(params), stream, 1)
    off = EorsParams(threshold=params.threshold + 1)
    wrong = dict(expected, live=expected["forced"] | (expected["acc"] > off.threshold))
    with pytest.raises(AssertionError, match="live"):
        tb_eors.check_outputs(rec["o_valid"], rec["acc"], rec["forced"], rec["live"], wrong,
                              EorsLane.latency)


def test_params_validated():
    """Each refusal names the parameter and shows the bad value; a refused block is never
    created, so no "created but never used" warning follows (the run is -W error, and
    the Verilog built earlier in the session has switched that warning on)."""
    import gc
    from amaranth.hdl import Fragment
    Fragment.get(EorsLane(), None)     # an elaboration turns Amaranth's unused-warning on
    cases = [
        (lambda: EorsLane("nope"), TypeError, "params must be a EorsParams, not 'nope'"),
        (lambda: EorsPredictor(lanes=4, params={"width": 20}), TypeError,
         "params must be a EorsParams, not {'width': 20}"),
        (lambda: EorsPredictor(lanes=2.0), TypeError, "lanes must be an int, not 2.0"),
        (lambda: EorsPredictor(lanes=True), TypeError, "lanes must be an int, not True"),
        (lambda: EorsPredictor(lanes=0), ValueError, "lanes must be in >= 1, not 0"),
        (lambda: EorsParams(m=-3), ValueError, "EORS m must be in [0, 10], got -3"),
    ]
    for make, exc, msg in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == msg
    gc.collect()


def test_docs_and_models():
    for word in ("Latency", "throughput", "Ports", "Cycle rule"):
        assert word in EorsLane.__doc__
    for word in ("Latency", "Ports", "backpressure"):
        assert word in EorsPredictor.__doc__
    assert EorsPredictor.latency == EorsLane.latency
    x = np.array([0x3C00, 0x0000, 0x7C00, 0x4000], dtype=np.uint16)
    w = np.array([0x4000, 0x7C00, 0x3C00, 0xC000], dtype=np.uint16)
    for params in (DEFAULT_EORS, PURE):
        got = EorsLane.model(x, w, 0x3800, params)
        acc, forced = eors_acc(x[None], w[None], np.array([0x3800], np.uint16), params)
        assert got == {"acc": int(acc[0, 0]), "forced": bool(forced[0, 0]),
                       "live": bool(forced[0, 0] or acc[0, 0] > params.threshold)}
        assert got["forced"]        # Inf x 1.0 is a formed term; 0 x Inf is not
    A = np.array([[0x3C00, 0x3C00]], dtype=np.uint16)
    B = np.array([[0x3C00, 0x3C00], [0xBC00, 0xBC00]], dtype=np.uint16)
    res = EorsPredictor.model(A, B, np.zeros(2, np.uint16))
    assert res["live"].tolist() == [[True, False]]
    assert res["acc"].tolist() == [[2 << 12, -2 << 12]]


def test_bias_as_first_term(relu_records):
    """Without the bias pipe (use_bias=False) the bias sent as the first term
    (x = 1.0, w[j] = bias[j]) gives exactly the use_bias=True estimate."""
    lanes = 4
    nobias = EorsParams(use_bias=False)
    rng = np.random.default_rng(8)
    jobs = tb_eors.tensor_jobs(relu_records, lanes, 64, rng)
    moved = [(np.concatenate([[tb_eors.ONE], x]).astype(np.uint16),
              np.concatenate([bias[:, None], W], axis=1).astype(np.uint16),
              rng.integers(0, 1 << 16, lanes).astype(np.uint16))    # ignored without use_bias
             for x, W, bias in jobs]
    stream, expected = tb_eors.make_stream(np.random.default_rng(9), moved, nobias, lanes, empty=0)
    # the stream shuffles the jobs: compare as multisets of per-row results
    ref = sorted(tuple(eors_acc(x[None, :], W, bias, DEFAULT_EORS)[0][0].tolist()) for x, W, bias in jobs)
    assert sorted(tuple(r) for r in expected["acc"].tolist()) == ref
    rec = _amaranth_run(EorsPredictor(lanes=lanes, params=nobias), stream, lanes)
    tb_eors.check_outputs(rec["o_valid"], rec["acc"], rec["forced"], rec["live"], expected,
                          EorsPredictor.latency)
