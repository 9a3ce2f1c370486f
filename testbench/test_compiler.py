"""The compiler (``ganpu.host.compiler``): a training step of the MLP GAN as a program,
run on the processor's bit-exact program model with the host serving the pauses, against
the golden model's own step; rejection messages; dependency sanity."""

import numpy as np
import pytest

from ganpu.core.config import CoreConfig, Geometry
from ganpu.gan import GAN, TrainConfig
from ganpu.host.compiler import compile_gan, compile_step, mlp_layers, verify_step, run_step
from ganpu.model import DEFAULT_EORS, EorsParams
from ganpu.processor import ProcessorConfig, config
from ganpu.processor.model import check_program, pack_record, normalize, operand_ranges
from ganpu.processor.program import ProgramError, TaskKind

SIM = config("sim")
# small core buffers: many row chunks, and two dependency slots force ordering edges
TIGHT = ProcessorConfig(core=CoreConfig(geom=Geometry(a_bits=9, out_bits=12, mask_bits=12)),
                        deps=2)


def test_step_bit_exact():
    """Two steps through the same program and GBUF: every record's output and mask, the
    host's tensors, losses, masters and weights equal the golden model's step."""
    assert verify_step(SIM, TrainConfig(batch=32), steps=2) == []


def test_step_bit_exact_with_update():
    """The weight update as UPDATE records: three steps, the weights, masters and momenta
    staying in the GBUF, every record's output and every master, momentum and binary16
    weight equal to the golden optimizer's after each step."""
    prog = compile_gan(SIM, TrainConfig(batch=16), update=True)
    ups = [t for t in prog.tasks if t.kind == TaskKind.UPDATE]
    assert len(ups) == 12 and not prog.conflicts()
    assert [p.name for p in prog.pauses] == ["tanh_d", "loss_d", "tanh_g", "loss_g", "dtanh_g"]
    assert not prog.finish.reads and not prog.finish.writes
    # each update after the WG record of its gradient, before any reader of the new weights
    anc = prog.concurrent()
    for u in ups:
        wg = next(i for i, t in enumerate(prog.tasks) if t.writes and
                  t.writes[0][0] == u.reads[0][0] and t.kind == TaskKind.GEMM)
        assert (wg, prog.tasks.index(u)) not in anc
    assert verify_step(SIM, TrainConfig(batch=16), steps=3, update=True) == []


def test_update_mutation_is_caught():
    """verify_step(update=True) checks the masters: a learning rate one ulp off fails it."""
    from ganpu.processor.model import run_program

    def run(cfg, gbuf, records, on_pause):
        records = list(records)
        i = [i for i, r in enumerate(records) if r["kind"] == TaskKind.UPDATE][3]
        records[i] = {**records[i], "lr": records[i]["lr"] + 1}
        return run_program(cfg, gbuf, records, on_pause=on_pause)[3]
    bad = verify_step(SIM, TrainConfig(batch=8), steps=1, run=run, update=True)
    assert any("golden master" in b for b in bad)


def test_step_bit_exact_eors():
    """FP of every ReLU layer through the cores' EORS predictor, as TrainConfig(eors=...)."""
    prog = compile_gan(SIM, TrainConfig(batch=16, eors=DEFAULT_EORS))
    assert sum(r["eors"] for r in prog.records) == 10  # every FP of a ReLU layer
    assert verify_step(SIM, TrainConfig(batch=16, eors=DEFAULT_EORS), steps=2) == []


def test_step_bit_exact_tiled():
    prog = compile_gan(TIGHT, TrainConfig(batch=16))
    assert sum("[" in t.name and ":" in t.name for t in prog.tasks) > 10
    assert verify_step(TIGHT, TrainConfig(batch=16), steps=1) == []


def test_mutation_is_caught():
    """verify_step is not vacuous: a program that skips one row of one task fails it."""
    from ganpu.processor.model import run_program

    def run(cfg, gbuf, records, on_pause):
        records = list(records)
        i = next(i for i, r in enumerate(records) if r["kind"] == TaskKind.GEMM and r["m"] > 1
                 and i > 20)
        records[i] = {**records[i], "m": records[i]["m"] - 1}
        return run_program(cfg, gbuf, records, on_pause=on_pause)[3]
    bad = verify_step(SIM, TrainConfig(batch=8), steps=1, run=run)
    assert any("output differs" in b for b in bad)


def _exact_ranges(prog, t):
    """(reads, writes): sets of GBUF words of record ``t``, from the record's own fields
    (the compiler's pause ranges for PAUSE records)."""
    task = prog.tasks[t]
    if task.kind == TaskKind.PAUSE:
        words = lambda rs: set().union(*(range(lo, hi) for _, lo, hi in rs))
        return words(task.reads), words(task.writes)
    r = normalize(prog.cfg, task.record)
    M, N, K = r["m"], r["n"], r["k"]
    mi, ni, ki = np.arange(M)[:, None], np.arange(N)[:, None], np.arange(K)[None, :]
    a, b, o = r["a"], r["b"], r["out"]
    reads = set((a["base"] + mi * a["s0"] + ki * a["s1"]).ravel().tolist())
    reads |= set((b["base"] + ni * b["s0"] + ki * b["s1"]).ravel().tolist())
    if r["bias"]:
        reads |= set(range(r["bias_base"], r["bias_base"] + N))
    names = [n for n, _ in operand_ranges(r)]
    if "mask_in" in names:
        reads |= set(range(r["mask_in_base"], r["mask_in_base"] + M * N))
    writes = set((o["base"] + mi * o["s0"] + ni.T * o["s1"]).ravel().tolist())
    if r["store_mask"]:
        writes |= set(range(r["mask_out_base"], r["mask_out_base"] + M * N))
    return reads, writes


@pytest.mark.parametrize("cfg", [SIM, TIGHT], ids=["sim", "tight"])
def test_dependencies(cfg):
    prog = compile_gan(cfg, TrainConfig(batch=16))
    recs = prog.records
    assert check_program(cfg, recs)[0] == ProgramError.OK
    for t, rec in enumerate(recs):
        assert len(rec["deps"]) == cfg.deps
        assert all(d["index"] < t for d in rec["deps"] if d["valid"]), t
        pack_record(cfg, rec)  # every field fits its width
    # transitive dependencies, then every pair that may run at the same time
    anc = []
    for rec in recs:
        a = set()
        for d in rec["deps"]:
            if d["valid"]:
                a |= anc[d["index"]] | {d["index"]}
        anc.append(a)
    acc = [_exact_ranges(prog, t) for t in range(len(recs))]
    concurrent = 0
    for j in range(len(recs)):
        for i in range(j):
            if i in anc[j]:
                continue
            concurrent += 1
            (ri, wi), (rj, wj) = acc[i], acc[j]
            assert not (wi & (rj | wj)) and not (wj & ri), (prog.tasks[i].name, prog.tasks[j].name)
    assert concurrent > 0
    assert prog.conflicts() == []
    # the D FP on real data needs nothing from G, and the G update's FP nothing from D
    first = lambda name: next(i for i, t in enumerate(prog.tasks) if t.name.startswith(name))
    assert first("d/G.fc1/fp") not in anc[first("d/D.fc1/fp[real]")]
    assert first("g/G.fc3/fp") not in anc[first("d/D.fc3/wg")]


def test_program_shape():
    prog = compile_gan(SIM, TrainConfig())
    assert [p.name for p in prog.pauses] == ["tanh_d", "loss_d", "sgd_d", "tanh_g", "loss_g",
                                             "dtanh_g"]
    assert all(prog.tasks[p.index].kind == TaskKind.PAUSE for p in prog.pauses)
    assert prog.finish.name == "sgd_g"
    # every tensor inside the GBUF, none overlapping
    spans = sorted((b, b + int(np.prod(s)), n) for n, (b, s) in prog.tensors.items())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert spans[-1][1] <= SIM.gbuf_depth
    for t in prog.tasks:
        if t.kind == TaskKind.GEMM:
            assert t.record["work"] > 0 and t.record["words"] > 0


def test_same_program_every_step():
    a = compile_gan(SIM, TrainConfig(seed=1))
    b = compile_gan(SIM, TrainConfig(seed=2))
    assert a.records == b.records and a.tensors == b.tensors


def test_run_step_losses_match():
    ref, hw = GAN(TrainConfig(batch=8)), GAN(TrainConfig(batch=8))
    prog = compile_gan(SIM, hw)
    got, _ = run_step(prog, hw)
    assert got == ref.step()


def test_update_needs_hyper():
    G = D = [("fc1", 4, 4, "relu", 0)]
    with pytest.raises(ValueError, match=r"update needs hyper = \{'D': bits, 'G': bits\}, not None"):
        compile_step(SIM, G, [("fc1", 4, 1, "identity", 0)], 2, update=True)


def test_rejections():
    gan = GAN(TrainConfig())
    G, D = mlp_layers(gan.G), mlp_layers(gan.D)
    with pytest.raises(ValueError, match=r"tensor '.*' of shape \(.*\) \(\d+ words\) at GBUF word "
                                         r"\d+ ends at \d+, beyond the GBUF of 4096 words "
                                         r"\(gbuf_bits=12\)"):
        compile_step(ProcessorConfig(gbuf_bits=12), G, D, 32)
    with pytest.raises(ValueError, match=r"task 'd/G\.fc2/fp' \(M, N, K = 32, 128, 64\): its B "
                                         r"operand 'G\.fc2\.w' of N\*K = 8192 words does not fit "
                                         r"a core's B buffer of 1024 words"):
        compile_step(ProcessorConfig(core=CoreConfig(geom=Geometry(b_bits=10))), G, D, 32)
    with pytest.raises(ValueError, match=r"task 'd/G\.fc2/fp' \(M, N, K = 32, 128, 64\): one row "
                                         r"of 'd/G\.fc2\.y' of N = 128 words does not fit a "
                                         r"core's OUT buffer \(64\) or mask buffer \(8192\)"):
        compile_step(ProcessorConfig(core=CoreConfig(geom=Geometry(out_bits=6))), G, D, 32)
    with pytest.raises(ValueError, match=r"one row of A \('d/G\.fc1\.y'\) of K = 64 words does "
                                         r"not fit a core's A buffer of 32 words"):
        compile_step(ProcessorConfig(core=CoreConfig(geom=Geometry(a_bits=5))), G, D, 32)
    with pytest.raises(ValueError, match=r"task 'd/G\.fc1/fp' \(M, N, K = 32, 64, 16\): bias "
                                         r"'G\.fc1\.b' of N = 64 words does not fit a core's "
                                         r"BIAS buffer of 32 words"):
        compile_step(ProcessorConfig(core=CoreConfig(geom=Geometry(bias_bits=5))), G, D, 32)
    with pytest.raises(ValueError, match=r"program of 42 tasks exceeds the task table of 16 "
                                         r"records \(program_bits=4\)"):
        compile_step(ProcessorConfig(program_bits=4), G, D, 32)
    with pytest.raises(ValueError, match=r"batch must be a positive int, not 0"):
        compile_step(SIM, G, D, 0)
    with pytest.raises(TypeError, match=r"cfg must be a ProcessorConfig, not 'sim'"):
        compile_step("sim", G, D, 32)
    with pytest.raises(ValueError, match=r"G's output of 64 features does not match D's input of 128"):
        compile_step(SIM, G, D[1:], 32)
    with pytest.raises(ValueError, match=r"D must end in one logit, not 64 outputs"):
        compile_step(SIM, G, D[:2], 32)
    with pytest.raises(ValueError, match=r"the compiler supports FC layers only; G\.tconv2 is 'tconv'"):
        compile_gan(SIM, TrainConfig(net="conv"))
    with pytest.raises(ValueError, match=r"eors=EorsParams\(.*\) differs from the cores' EORS"):
        compile_step(SIM, G, D, 32, eors=EorsParams(m=DEFAULT_EORS.m + 1))


class _ModelDriver:
    """The processor driver's calls (``write_gbuf``, ``read_gbuf``, ``run``,
    ``counters``) on the bit-exact program model, counting the words the host moves."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
        self.moved = 0

    async def write_gbuf(self, base, words):
        words = np.asarray(words, dtype=np.uint16).ravel()
        self.gbuf[base:base + words.size] = words
        self.moved += words.size

    async def read_gbuf(self, base, count):
        self.moved += count
        return self.gbuf[base:base + count].copy()

    async def run(self, records, policy, on_pause=None):
        from ganpu.processor.model import run_program
        # the model up to the next PAUSE (records already run become no-op PAUSEs),
        # then the host's coroutine, as the processor stops there
        done = 0
        while True:
            cut = next((i for i in range(done, len(records))
                        if records[i]["kind"] == TaskKind.PAUSE), len(records))
            head = [dict(r, kind=TaskKind.PAUSE) if i < done else r
                    for i, r in enumerate(records[:cut])]
            err, _, _, self.gbuf = run_program(self.cfg, self.gbuf, head)
            assert err == ProgramError.OK
            if cut == len(records):
                return
            await on_pause(cut, self)
            done = cut + 1

    async def counters(self):
        return {"moved": self.moved}


def test_run_step_driver():
    """The host's side of a step over a driver moves only the pauses' tensors and
    ends with the same GBUF as the program model's step; read back, every tensor."""
    import asyncio
    from ganpu.host.compiler import run_step_driver
    from ganpu.processor.program import Policy
    prog = compile_gan(SIM, TrainConfig(batch=8))
    want, gbuf = run_step(prog, GAN(TrainConfig(batch=8)))
    drv = _ModelDriver(SIM)
    got, _, counters = asyncio.run(run_step_driver(drv, prog, GAN(TrainConfig(batch=8)),
                                                   Policy.ADAPTIVE, read_back=False))
    assert got == want and np.array_equal(drv.gbuf, gbuf)
    assert counters["moved"] < prog.words
    _, image, _ = asyncio.run(run_step_driver(_ModelDriver(SIM), prog, GAN(TrainConfig(batch=8)),
                                              Policy.ADAPTIVE))
    assert np.array_equal(image, gbuf)
