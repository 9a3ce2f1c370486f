"""The compiler: one training step of an MLP GAN becomes a *program* for the processor
(``docs/astm.md``, record format in ``docs/program.md``).

:func:`compile_step` allocates every tensor of the step in the global buffer (GBUF),
lowers every gemm of the step to GEMM task records (rows split into chunks when a task
exceeds a core's buffers; B must fit whole), places PAUSE records where the host acts
(tanh of G's output, the losses and their gradients, tanh', the D weight update), and
derives each record's dependencies from the GBUF ranges it reads and writes: a record
depends on every earlier record that writes what it reads, reads what it writes or
writes what it writes (so records that may run concurrently never touch each other's
data), reduced transitively to fit the record's dependency slots.

The step is the one :meth:`ganpu.gan.train.GAN.step` runs (D update, then G update):

* D update: G FP on ``z_d``; PAUSE ``tanh_d`` (host: fake = tanh(G out) into the fake
  rows of ``x_d``); D FP on the real rows and on the fake rows (separate records, the
  real ones need nothing from G); PAUSE ``loss_d`` (host: sigmoid, loss and its scaled
  gradient into ``d/dlogit``); WG, bias gradient and BP through D; PAUSE ``sgd_d``
  (host: SGD on D from the gradients, new D weights into GBUF).
* G update: G FP on ``z_g`` (independent of the D update: it may run beside it);
  PAUSE ``tanh_g``; D FP on the fakes with the new D weights; PAUSE ``loss_g``; BP
  through D down to its input; PAUSE ``dtanh_g`` (host: tanh' into ``g/G.fcN.dz``);
  WG, bias gradient and BP through G. The program ends with G's gradients in GBUF; the
  host runs G's SGD after DONE (``Program.finish``).

With ``update=True`` the weight update runs on the processor too: every parameter
tensor gets an UPDATE record after the WG record of its gradient (``docs/update.md``),
its binary32 masters and momenta live in the GBUF (``{net}.{layer}.{w|b}32`` and
``.{w|b}v``, written by the host once), there is no ``sgd_d`` pause and nothing
left for ``finish``: the whole step, weight update included, is one program run.

The program is the same every step; only the data in GBUF changes. :func:`run_step`
runs it with a bit-exact program model and a host that does the pauses' work with the
same float32 math as ``GAN.step``.
"""

from dataclasses import dataclass, field

import numpy as np

from .. import numerics
from ..core.config import check_type
from ..core.descriptor import Op, Act
from ..processor.config import ProcessorConfig
from ..processor.program import TaskKind, EORS_SLOTS

__all__ = ["compile_step", "compile_gan", "mlp_layers", "Program", "Task", "Pause",
           "HostStep", "run_step", "run_step_driver", "verify_step", "task_words", "task_macs"]

_ACTS = {"identity": Act.IDENTITY, "relu": Act.RELU, "leaky": Act.LEAKY}
# the golden model's pass names (GAN.phase_tag), keyed by the tensors' prefix
_PASS = {"d": "d_update", "g": "g_update"}


@dataclass
class Task:
    """One record of the program with its compile-time meaning.

    ``reads``/``writes`` are lists of ``(tensor, lo, hi)`` word ranges (``hi``
    exclusive) in GBUF; ``name`` is ``"{pass}/{net}.{layer}/{phase}"`` (plus ``[m0:m1]``
    for a row chunk) for a GEMM, the pause's name for a PAUSE; ``gemm`` is the golden
    model's gemm it computes rows ``rows`` of (key as in :func:`ganpu.gan.export_layers`
    without the step).
    """
    name: str
    kind: TaskKind
    record: dict
    reads: list
    writes: list
    gemm: str = None
    rows: tuple = None


@dataclass
class Pause:
    """What the host must do at a PAUSE record (or, for ``finish``, after DONE)."""
    name: str
    index: int
    description: str
    reads: tuple
    writes: tuple


@dataclass
class Program:
    """A compiled step: ``records`` (dicts of ``task_layout`` fields), ``tasks`` (the
    same with names and GBUF ranges), ``tensors`` (name -> (base, shape)), ``pauses``
    (record order), ``finish`` (the host's work after DONE) and ``inputs`` (tensors the
    host writes before start: weights, noise, real batch, constants)."""
    cfg: ProcessorConfig
    batch: int
    tasks: list
    tensors: dict
    pauses: list
    finish: Pause
    inputs: tuple
    layers: dict = field(default_factory=dict)
    update: bool = False

    @property
    def params(self):
        """Names of the parameter tensors (``{net}.{layer}.w`` / ``.b``)."""
        return [f"{net}.{name}.{t}" for net in ("G", "D") for name, *_ in self.layers[net]
                for t in ("w", "b")]

    @property
    def data_inputs(self):
        """The inputs the host writes every step (with ``update`` the weights, masters
        and momenta stay in the GBUF from one step to the next)."""
        if not self.update:
            return self.inputs
        params = set(self.params)
        return tuple(n for n in self.inputs if n not in params and n[:-2] not in params
                     and n[:-1] not in params)

    @property
    def records(self):
        return [t.record for t in self.tasks]

    @property
    def words(self):
        """GBUF words allocated."""
        return max((b + int(np.prod(s)) for b, s in self.tensors.values()), default=0)

    def tensor(self, gbuf, name):
        """The words of tensor ``name`` in ``gbuf`` (a copy, shaped)."""
        base, shape = self.tensors[name]
        return np.array(gbuf[base:base + int(np.prod(shape))], dtype=np.uint16).reshape(shape)

    def store(self, gbuf, name, value, rows=None):
        """Write ``value`` into tensor ``name`` (or its rows ``rows = (r0, r1)``)."""
        base, shape = self.tensors[name]
        value = np.asarray(value, dtype=np.uint16)
        row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        r0, r1 = (0, shape[0]) if rows is None else rows
        if value.size != (r1 - r0) * row:
            raise ValueError(f"tensor {name!r} rows {r0}:{r1} hold {(r1 - r0) * row} words, "
                             f"got {value.size}")
        gbuf[base + r0 * row:base + r1 * row] = value.ravel()

    def concurrent(self):
        """Pairs ``(i, j)``, ``i < j``, of records neither of which depends (transitively)
        on the other: the scheduler may run them at the same time."""
        anc = _ancestors([_deps(t.record) for t in self.tasks])
        return [(i, j) for j in range(len(self.tasks)) for i in range(j) if not anc[j] >> i & 1]

    def conflicts(self):
        """Concurrent pairs whose GBUF ranges clash (one writes what the other reads or
        writes): empty for a correct program."""
        bad = []
        for i, j in self.concurrent():
            a, b = self.tasks[i], self.tasks[j]
            if _clash(a.writes, b.writes + b.reads) or _clash(b.writes, a.reads):
                bad.append((i, j))
        return bad


def _overlap(r, s):
    return r[1] < s[2] and s[1] < r[2]


def _clash(xs, ys):
    return any(_overlap(x, y) for x in xs for y in ys)


def _deps(rec):
    return [d["index"] for d in rec["deps"] if d["valid"]]


def _ancestors(deps):
    """Bit sets of the transitive dependencies of every record."""
    anc = []
    for ds in deps:
        a = 0
        for d in ds:
            a |= anc[d] | (1 << d)
        anc.append(a)
    return anc


def mlp_layers(net):
    """``[(name, fin, fout, act, slope16), ...]`` of a :class:`ganpu.model.Net` of FC
    layers; ``ValueError`` for any other layer kind (the core has no convolution)."""
    out = []
    for layer in net.layers:
        if layer.kind != "fc":
            raise ValueError(f"the compiler supports FC layers only; {net.name}.{layer.name} "
                             f"is {layer.kind!r}")
        out.append((layer.name, layer.fin, layer.fout, layer.act, layer.slope16 or 0))
    return out


def task_macs(rec):
    """Dense MACs of a GEMM record (``m*n*k``); 0 for a PAUSE."""
    return rec["m"] * rec["n"] * rec["k"] if rec["kind"] == TaskKind.GEMM else 0


def _reads_mask(rec):
    return (rec["op"] == Op.FP and rec["use_mask"]) or \
        (rec["op"] == Op.BP and rec["act"] != Act.IDENTITY)


def task_words(rec, eors_lanes=16):
    """GBUF words a GEMM record moves: A, B (once, however many cores share it), bias,
    BW (B regrouped for EORS), the mask read, OUT and the mask written."""
    if rec["kind"] != TaskKind.GEMM:
        return 0
    m, n, k = rec["m"], rec["n"], rec["k"]
    words = m * k + n * k + m * n
    words += n if rec["bias"] else 0
    words += m * n if _reads_mask(rec) else 0
    words += m * n if rec["store_mask"] else 0
    if rec["eors"] and rec["op"] == Op.FP and rec["act"] == Act.RELU:
        words += -(-n // eors_lanes) * eors_lanes * k
    return words


class _Builder:
    """Allocation, records and dependencies of one program under construction."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.tensors = {}
        self.top = 0
        self.tasks = []
        self.pauses = []
        self.inputs = []
        g = cfg.core.geom
        self.depth = {x: g.depth(x) for x in ("a", "b", "out", "bias", "mask")}

    # --- allocation
    def alloc(self, name, shape, input=False):
        size = int(np.prod(shape))
        if self.top + size > self.cfg.gbuf_depth:
            raise ValueError(
                f"tensor {name!r} of shape {tuple(shape)!r} ({size} words) at GBUF word "
                f"{self.top} ends at {self.top + size}, beyond the GBUF of "
                f"{self.cfg.gbuf_depth} words (gbuf_bits={self.cfg.gbuf_bits})")
        self.tensors[name] = (self.top, tuple(shape))
        self.top += size
        if input:
            self.inputs.append(name)
        return name

    def rng(self, name, lo=0, hi=None):
        base, shape = self.tensors[name]
        size = int(np.prod(shape))
        return (name, base + lo, base + (size if hi is None else hi))

    def base(self, name):
        return self.tensors[name][0]

    # --- records
    def _record(self, kind, **kw):
        rec = {"kind": kind, "deps": [], "op": Op.FP, "act": Act.IDENTITY, "slope": 0,
               "use_mask": 0, "bias": 0, "eors": 0, "store_mask": 0, "m": 0, "n": 0, "k": 0,
               "a": {"base": 0, "s0": 0, "s1": 0}, "b": {"base": 0, "s0": 0, "s1": 0},
               "out": {"base": 0, "s0": 0, "s1": 0},
               "bias_base": 0, "mask_in_base": 0, "mask_out_base": 0, "work": 0, "words": 0,
               "eors_rel": 0, "eors_slot": 0}
        rec.update(kw)
        return rec

    def gemm(self, name, gemm_key, op, act, slope, M, N, K, a, b, out, bias=None,
             mask_in=None, mask_out=None, eors=False, row0=0, eors_slot=0, eors_rel=0):
        """Rows-chunked GEMM records. ``a``/``out``: (tensor, row offset, s_m, s_k /
        s_n) with the row offset in words per row m; ``b``: (tensor, offset, s_n, s_k);
        ``mask_in``/``mask_out``: (tensor, row offset) with rows of N words."""
        d = self.depth
        what = f"task {name!r} (M, N, K = {M}, {N}, {K})"
        if N * K > d["b"]:
            raise ValueError(f"{what}: its B operand {b[0]!r} of N*K = {N * K} words does not "
                             f"fit a core's B buffer of {d['b']} words")
        if K > d["a"]:
            raise ValueError(f"{what}: one row of A ({a[0]!r}) of K = {K} words does not fit "
                             f"a core's A buffer of {d['a']} words")
        if N > d["out"] or N > d["mask"]:
            raise ValueError(f"{what}: one row of {out[0]!r} of N = {N} words does not fit a "
                             f"core's OUT buffer ({d['out']}) or mask buffer ({d['mask']})")
        if bias is not None and N > d["bias"]:
            raise ValueError(f"{what}: bias {bias!r} of N = {N} words does not fit a core's "
                             f"BIAS buffer of {d['bias']} words")
        eors = bool(eors) and op == Op.FP and act == Act.RELU
        if eors:
            P = self.cfg.core.eors_lanes
            if -(-N // P) * K > d["b"] // P:
                raise ValueError(f"{what}: EORS weights of {-(-N // P) * P * K} words do not "
                                 f"fit a core's BW buffer of {d['b']} words")
        use_mask = op == Op.FP and mask_in is not None
        dmax = (1 << self.cfg.core.geom.dim_bits) - 1
        rows = min(M, d["a"] // K, d["out"] // N, d["mask"] // N, dmax)
        for m0 in range(0, M, rows):
            m1 = min(M, m0 + rows)
            ta, oa, am, ak = a
            tb, ob, bn, bk = b
            to, oo, om, on = out
            rec = self._record(
                TaskKind.GEMM, op=op, act=act, slope=slope, use_mask=int(use_mask),
                bias=int(bias is not None), eors=int(eors), store_mask=int(mask_out is not None),
                m=m1 - m0, n=N, k=K,
                a={"base": self.base(ta) + oa + m0 * am, "s0": am, "s1": ak},
                b={"base": self.base(tb) + ob, "s0": bn, "s1": bk},
                out={"base": self.base(to) + oo + m0 * om, "s0": om, "s1": on},
                bias_base=self.base(bias) if bias is not None else 0,
                mask_in_base=self.base(mask_in[0]) + mask_in[1] + m0 * N if mask_in else 0,
                mask_out_base=self.base(mask_out[0]) + mask_out[1] + m0 * N if mask_out else 0,
                eors_slot=eors_slot if eors else 0, eors_rel=eors_rel if eors else 0)
            rec["words"] = task_words(rec, self.cfg.core.eors_lanes)
            reads = [self._span(ta, rec["a"], m1 - m0, K), self._span(tb, rec["b"], N, K)]
            writes = [self._span(to, rec["out"], m1 - m0, N)]
            if bias is not None:
                reads.append(self._lin(bias, rec["bias_base"], N))
            if _reads_mask(rec):
                reads.append(self._lin(mask_in[0], rec["mask_in_base"], (m1 - m0) * N))
            if mask_out is not None:
                writes.append(self._lin(mask_out[0], rec["mask_out_base"], (m1 - m0) * N))
            chunk = name if (m0, m1) == (0, M) else f"{name}[{m0}:{m1}]"
            self.tasks.append(Task(chunk, TaskKind.GEMM, rec, reads, writes, gemm_key,
                                   (row0 + m0, row0 + m1)))

    @staticmethod
    def _span(tensor, op, r0, r1):
        last = op["base"] + (r0 - 1) * op["s0"] + (r1 - 1) * op["s1"]
        return (tensor, op["base"], last + 1)

    @staticmethod
    def _lin(tensor, base, n):
        return (tensor, base, base + n)

    def update(self, name, tensor, hyper):
        """An UPDATE record for parameter tensor ``tensor`` (its gradient ``{tensor}``
        with ``.w``/``.b`` replaced by ``.dw``/``.db``)."""
        net_layer, t = tensor.rsplit(".", 1)
        grad, w32, v32 = f"{net_layer}.d{t}", f"{tensor}32", f"{tensor}v"
        count = int(np.prod(self.tensors[tensor][1]))
        rec = {"kind": TaskKind.UPDATE, "deps": [], "count": count, "w_base": self.base(w32),
               "v_base": self.base(v32), "g_base": self.base(grad), "w16_base": self.base(tensor),
               **hyper}
        self.tasks.append(Task(name, TaskKind.UPDATE, rec, [self.rng(grad), self.rng(w32), self.rng(v32)],
                               [self.rng(tensor), self.rng(w32), self.rng(v32)]))

    def pause(self, name, description, reads, writes):
        rec = self._record(TaskKind.PAUSE)
        r = [self.rng(*x) if isinstance(x, tuple) else self.rng(x) for x in reads]
        w = [self.rng(*x) if isinstance(x, tuple) else self.rng(x) for x in writes]
        self.tasks.append(Task(name, TaskKind.PAUSE, rec, r, w))
        self.pauses.append(Pause(name, len(self.tasks) - 1, description,
                                 tuple(x[0] if isinstance(x, tuple) else x for x in reads),
                                 tuple(x[0] if isinstance(x, tuple) else x for x in writes)))

    # --- dependencies
    def link(self):
        n = len(self.tasks)
        raw = []
        for j, t in enumerate(self.tasks):
            ds = [i for i in range(j) if _clash(self.tasks[i].writes, t.reads + t.writes)
                  or _clash(t.writes, self.tasks[i].reads)]
            raw.append(ds)
        deps = _reduce(raw)
        slots = self.cfg.deps
        # too many direct dependencies: order two of them (the later after the earlier)
        # so the record needs one slot less; each such edge only adds order, never data
        changed = True
        while changed:
            changed = False
            for j in range(n):
                if len(deps[j]) > slots:
                    a, b = sorted(deps[j])[-2:]
                    deps[b] = sorted(set(deps[b]) | {a})
                    deps = _reduce(deps)
                    changed = True
                    break
        for j, t in enumerate(self.tasks):
            t.record["deps"] = [{"valid": 1, "index": i} for i in deps[j]] + \
                [{"valid": 0, "index": 0}] * (slots - len(deps[j]))


def _reduce(deps):
    """Transitive reduction of a dependency list (each list of earlier indices)."""
    anc = _ancestors(deps)
    out = []
    for ds in deps:
        ds = sorted(set(ds))
        keep = [d for d in ds if not any(anc[e] >> d & 1 for e in ds if e != d)]
        out.append(keep)
    return out


def compile_step(cfg, G, D, batch, eors=None, update=False, hyper=None, eors_rel=None):
    """The program of one training step of the MLP GAN ``G``, ``D`` (lists from
    :func:`mlp_layers`) with ``batch`` real and ``batch`` fake samples.

    ``update``: the weight updates as UPDATE records with the hyperparameters
    ``hyper = {"D": bits, "G": bits}`` (each :attr:`ganpu.model.SGD.hyper_bits`).

    ``eors`` (an :class:`~ganpu.model.EorsParams` or None, as in ``TrainConfig``) sets the
    EORS bit of every FP task with ReLU; it must equal the cores' own parameters. Each
    ReLU layer gets its own EORS calibration slot (``eors_slot``, in G's then D's layer
    order, ``docs/eors.md``) and the level ``eors_rel[layer]`` (``{"G.fc1": q, ...}``;
    missing layers 0, the cores' configured level).
    Raises ``ValueError`` naming the tensor (or task) and the sizes when the step does
    not fit ``cfg``.
    """
    check_type("cfg", cfg, ProcessorConfig)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, not {batch!r}")
    if eors is not None and eors != cfg.core.eors:
        raise ValueError(f"eors={eors!r} differs from the cores' EORS parameters {cfg.core.eors!r}")
    if G[-1][2] != D[0][1]:
        raise ValueError(f"G's output of {G[-1][2]} features does not match D's input of {D[0][1]}")
    if D[-1][2] != 1:
        raise ValueError(f"D must end in one logit, not {D[-1][2]!r} outputs")
    if update and (not isinstance(hyper, dict) or set(hyper) != {"D", "G"}):
        raise ValueError(f"update needs hyper = {{'D': bits, 'G': bits}}, not {hyper!r}")
    Bn = batch
    relu = [f"{net}.{name}" for net, layers in (("G", G), ("D", D))
            for name, fin, fout, act, slope in layers if act == "relu"] if eors is not None else []
    if len(relu) > EORS_SLOTS:
        raise ValueError(f"{len(relu)} EORS ReLU layers {relu!r} exceed the {EORS_SLOTS} "
                         f"calibration slots")
    eors_slots = {layer: i for i, layer in enumerate(relu)}
    eors_rel = dict(eors_rel or {})
    bld = _Builder(cfg)
    zdim, xdim = G[0][1], D[0][1]
    bld.alloc("ones", (2 * Bn,), input=True)
    for net, layers in (("G", G), ("D", D)):
        for name, fin, fout, act, slope in layers:
            bld.alloc(f"{net}.{name}.w", (fout, fin), input=True)
            bld.alloc(f"{net}.{name}.b", (fout,), input=True)
    if update:
        for net, layers in (("G", G), ("D", D)):
            for name, fin, fout, act, slope in layers:
                for t, shape in (("w", (fout, fin)), ("b", (fout,))):
                    for suffix in ("32", "v"):
                        bld.alloc(f"{net}.{name}.{t}{suffix}", shape[:-1] + (2 * shape[-1],), input=True)
    bld.alloc("z_d", (Bn, zdim), input=True)
    bld.alloc("z_g", (Bn, zdim), input=True)
    bld.alloc("x_d", (2 * Bn, xdim), input=True)   # rows 0..B-1 real (input), B..2B-1 fake
    bld.alloc("x_g", (Bn, xdim))
    for p, rows in (("d", 2 * Bn), ("g", Bn)):
        for name, fin, fout, act, slope in G:
            bld.alloc(f"{p}/G.{name}.y", (Bn, fout))
            if act != "identity" and p == "g":
                bld.alloc(f"{p}/G.{name}.mask", (Bn, fout))
        for name, fin, fout, act, slope in D:
            bld.alloc(f"{p}/D.{name}.y", (rows, fout))
            if act != "identity":
                bld.alloc(f"{p}/D.{name}.mask", (rows, fout))
        bld.alloc(f"{p}/dlogit", (rows, 1))
        for i, (name, fin, fout, act, slope) in enumerate(D):
            if i > 0 or p == "g":
                bld.alloc(f"{p}/D.{name}.dx", (rows, fin))
    for net, layers in (("D", D), ("G", G)):
        for name, fin, fout, act, slope in layers:
            bld.alloc(f"{net}.{name}.dw", (fout, fin))
            bld.alloc(f"{net}.{name}.db", (fout,))
    for i, (name, fin, fout, act, slope) in enumerate(G):
        bld.alloc(f"g/G.{name}.dz", (Bn, fout))

    def fp(p, net, layers, x, r0, r1, key_rows=None):
        """FP through ``layers`` of rows r0..r1 of input tensor ``x``."""
        M = r1 - r0
        for i, (name, fin, fout, act, slope) in enumerate(layers):
            y = f"{p}/{net}.{name}.y"
            mask = f"{p}/{net}.{name}.mask" if f"{p}/{net}.{name}.mask" in bld.tensors else None
            tag = "" if key_rows is None else key_rows
            bld.gemm(f"{p}/{net}.{name}/fp{tag}", f"{_PASS[p]}/{net}.{name}/fp", Op.FP,
                     _ACTS[act], slope, M, fout, fin,
                     a=(x, r0 * fin, fin, 1), b=(f"{net}.{name}.w", 0, fin, 1),
                     out=(y, r0 * fout, fout, 1), bias=f"{net}.{name}.b",
                     mask_out=(mask, r0 * fout) if mask else None, eors=eors is not None,
                     row0=r0, eors_slot=eors_slots.get(f"{net}.{name}", 0),
                     eors_rel=eors_rel.get(f"{net}.{name}", 0))
            x = y

    def wg(p, net, name, fin, fout, dz, x, rows):
        bld.gemm(f"{p}/{net}.{name}/wg", f"{_PASS[p]}/{net}.{name}/wg", Op.WG, Act.IDENTITY, 0,
                 fout, fin, rows, a=(dz, 0, 1, fout), b=(x, 0, 1, fin),
                 out=(f"{net}.{name}.dw", 0, fin, 1))
        bld.gemm(f"{p}/{net}.{name}/db", f"{_PASS[p]}/{net}.{name}/db", Op.WG, Act.IDENTITY, 0,
                 fout, 1, rows, a=(dz, 0, 1, fout), b=("ones", 0, 0, 1),
                 out=(f"{net}.{name}.db", 0, 1, 1))

    def bp(p, net, layers, i, dz, dx, rows):
        name, fin, fout, act, slope = layers[i]
        if i > 0:
            pname, _, _, pact, pslope = layers[i - 1]
            mask = f"{p}/{net}.{pname}.mask" if pact != "identity" else None
        else:
            pact, pslope, mask = "identity", 0, None
        bld.gemm(f"{p}/{net}.{name}/bp", f"{_PASS[p]}/{net}.{name}/bp", Op.BP, _ACTS[pact],
                 pslope, rows, fin, fout, a=(dz, 0, fout, 1), b=(f"{net}.{name}.w", 0, 1, fin),
                 out=(dx, 0, fin, 1), mask_in=(mask, 0) if mask else None)

    gout = f"G.{G[-1][0]}"
    dout = f"D.{D[-1][0]}"
    # ---- D update
    fp("d", "G", G, "z_d", 0, Bn)
    fp("g", "G", G, "z_g", 0, Bn)      # the G update's forward needs nothing from D
    fp("d", "D", D, "x_d", 0, Bn, key_rows="[real]")
    bld.pause("tanh_d", "fake = tanh(G output) in float32; its binary16 bits into the fake "
              "rows (B..2B-1) of x_d", [f"d/{gout}.y"], [("x_d", Bn * xdim, 2 * Bn * xdim)])
    fp("d", "D", D, "x_d", Bn, 2 * Bn, key_rows="[fake]")
    bld.pause("loss_d", "p = sigmoid(logits); D loss; dlogit = (p - y) / 2B * loss_scale "
              "(y = 1 real, 0 fake) into d/dlogit", [f"d/{dout}.y"], ["d/dlogit"])
    dz = "d/dlogit"
    for i in reversed(range(len(D))):
        name, fin, fout, act, slope = D[i]
        wg("d", "D", name, fin, fout, dz, "x_d" if i == 0 else f"d/D.{D[i - 1][0]}.y", 2 * Bn)
        if i > 0:
            dx = f"d/D.{name}.dx"
            bp("d", "D", D, i, dz, dx, 2 * Bn)
            dz = dx
    dgrads = [f"D.{n}.{g}" for n, *_ in D for g in ("dw", "db")]
    if update:
        for n, *_ in D:
            for t in ("w", "b"):
                bld.update(f"d/D.{n}.{t}/update", f"D.{n}.{t}", hyper["D"])
    else:
        bld.pause("sgd_d", "SGD with momentum on D's binary32 masters from D's gradients; "
                  "D's new binary16 weights and biases into GBUF", dgrads,
                  [f"D.{n}.{g}" for n, *_ in D for g in ("w", "b")])
    # ---- G update
    bld.pause("tanh_g", "fake = tanh(G output) in float32 (kept for tanh'); its binary16 "
              "bits into x_g", [f"g/{gout}.y"], ["x_g"])
    fp("g", "D", D, "x_g", 0, Bn)
    bld.pause("loss_g", "p = sigmoid(logits); G loss; dlogit = (p - 1) / B * loss_scale into "
              "g/dlogit", [f"g/{dout}.y"], ["g/dlogit"])
    dz = "g/dlogit"
    for i in reversed(range(len(D))):
        dx = f"g/D.{D[i][0]}.dx"
        bp("g", "D", D, i, dz, dx, Bn)
        dz = dx
    gdz = f"g/{gout}.dz"
    bld.pause("dtanh_g", "dG = dx of D's input * (1 - fake^2) in float32 (tanh'); its "
              f"binary16 bits into {gdz}", [dz], [gdz])
    dz = gdz
    for i in reversed(range(len(G))):
        name, fin, fout, act, slope = G[i]
        wg("g", "G", name, fin, fout, dz, "z_g" if i == 0 else f"g/G.{G[i - 1][0]}.y", Bn)
        if i > 0:
            dx = f"g/G.{G[i - 1][0]}.dz"
            bp("g", "G", G, i, dz, dx, Bn)
            dz = dx
    if update:
        for n, *_ in G:
            for t in ("w", "b"):
                bld.update(f"g/G.{n}.{t}/update", f"G.{n}.{t}", hyper["G"])
    if len(bld.tasks) > cfg.program_depth:
        raise ValueError(f"program of {len(bld.tasks)} tasks exceeds the task table of "
                         f"{cfg.program_depth} records (program_bits={cfg.program_bits})")
    bld.link()
    for t in bld.tasks:
        if t.kind == TaskKind.GEMM:
            t.record["work"] = _work(cfg, t.record)
            if t.record["work"] >= 1 << 24 or t.record["words"] >= 1 << 24:
                raise ValueError(f"task {t.name!r}: work {t.record['work']} or words "
                                 f"{t.record['words']} exceed the 24-bit record fields")
    if update:
        finish = Pause("done", len(bld.tasks), "after DONE: nothing (the program updated "
                       "every weight)", (), ())
    else:
        finish = Pause("sgd_g", len(bld.tasks), "after DONE: SGD with momentum on G's binary32 "
                       "masters from G's gradients; G's new binary16 weights and biases into GBUF",
                       tuple(f"G.{n}.{g}" for n, *_ in G for g in ("dw", "db")),
                       tuple(f"G.{n}.{g}" for n, *_ in G for g in ("w", "b")))
    return Program(cfg, Bn, bld.tasks, bld.tensors, bld.pauses, finish, tuple(bld.inputs),
                   {"G": list(G), "D": list(D)}, update)


def _work(cfg, rec):
    from ..processor.cycle_model import core_cycles
    return int(round(core_cycles(cfg.core.lanes, rec["m"], rec["n"], rec["k"], task_macs(rec))))


def compile_gan(cfg, gan, update=False):
    """:func:`compile_step` for a :class:`ganpu.gan.GAN` (or a ``TrainConfig``), with
    its optimizers' hyperparameters when ``update``."""
    from ..gan.train import GAN, TrainConfig
    if isinstance(gan, TrainConfig):
        gan = GAN(gan)
    check_type("gan", gan, GAN)
    return compile_step(cfg, mlp_layers(gan.G), mlp_layers(gan.D), gan.cfg.batch, gan.cfg.eors,
                        update=update, hyper={"D": gan.opt_d.hyper_bits, "G": gan.opt_g.hyper_bits})


def _f32(bits):
    return numerics.f32_value(numerics.widen(bits))


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


class HostStep:
    """The host's part of a step, on a :class:`ganpu.gan.GAN` holding the binary32
    masters and optimizer state: the same float32 math, in the same order, as
    ``GAN.step``.

    :meth:`setup` draws the step's noise and real batch (the same random draws as
    ``GAN.step``) and writes the inputs; :meth:`pause` serves one PAUSE;
    :meth:`finish` runs G's SGD after DONE and returns the losses.
    """

    def __init__(self, program, gan):
        self.p = program
        self.gan = gan
        self.state = {}

    def write_weights(self, gbuf, net):
        for layer in getattr(self.gan, net).layers:
            self.p.store(gbuf, f"{net}.{layer.name}.w", layer.w16)
            self.p.store(gbuf, f"{net}.{layer.name}.b", layer.b16)

    def _opt(self, net):
        return self.gan.opt_g if net == "G" else self.gan.opt_d

    def write_masters(self, gbuf):
        """The binary32 masters and momenta of both networks into their GBUF tensors
        (low half first; a momentum not started yet is -0.0)."""
        for net in ("G", "D"):
            v = self._opt(net).v
            for layer in getattr(self.gan, net).layers:
                for t in ("w", "b"):
                    w32 = getattr(layer, f"{t}32")
                    mom = v.get((layer.name, f"{t}32"))
                    mom = np.full(w32.shape, numerics.FP32_NEG_ZERO, np.uint32) if mom is None \
                        else np.asarray(mom, np.float32).view(np.uint32)
                    for suffix, x in (("32", w32.view(np.uint32)), ("v", mom)):
                        x = np.asarray(x, np.uint32).ravel()
                        self.p.store(gbuf, f"{net}.{layer.name}.{t}{suffix}",
                                     np.stack([x & 0xFFFF, x >> 16], axis=1).ravel())

    def sync(self, gbuf):
        """Take the device's weights: masters, momenta and binary16 copies from the GBUF
        into the GAN's layers and optimizers (``update`` programs)."""
        for net in ("G", "D"):
            v = self._opt(net).v
            for layer in getattr(self.gan, net).layers:
                for t in ("w", "b"):
                    shape = getattr(layer, f"{t}32").shape
                    w32, mom = (self._f32(gbuf, f"{net}.{layer.name}.{t}{suffix}").reshape(shape)
                                for suffix in ("32", "v"))
                    setattr(layer, f"{t}32", numerics.f32_value(w32))
                    v[(layer.name, f"{t}32")] = numerics.f32_value(mom)
                layer.sync()

    def _f32(self, gbuf, name):
        x = self.p.tensor(gbuf, name).ravel().astype(np.uint32)
        return x[0::2] | (x[1::2] << 16)

    def setup(self, gbuf, weights=True):
        gan, p, B = self.gan, self.p, self.p.batch
        if gan.cfg.batch != B:
            raise ValueError(f"GAN batch {gan.cfg.batch!r} differs from the program's {B!r}")
        z_d = gan.noise(B)
        real = gan.X[gan.rng.integers(0, len(gan.X), B)]
        z_g = gan.noise(B)
        p.store(gbuf, "ones", np.full(2 * B, numerics.f16_bits(1.0)[()], np.uint16))
        if weights or not p.update:
            self.write_weights(gbuf, "G")
            self.write_weights(gbuf, "D")
            if p.update:
                self.write_masters(gbuf)
        p.store(gbuf, "z_d", z_d)
        p.store(gbuf, "z_g", z_g)
        p.store(gbuf, "x_d", numerics.f16_bits(real), rows=(0, B))
        gan.phase_tag = "d_update"

    def _grads(self, gbuf, net):
        return {layer.name: (self.p.tensor(gbuf, f"{net}.{layer.name}.dw"),
                             self.p.tensor(gbuf, f"{net}.{layer.name}.db"))
                for layer in getattr(self.gan, net).layers}

    def pause(self, name, gbuf):
        gan, p, B = self.gan, self.p, self.p.batch
        S, eps = np.float32(gan.cfg.loss_scale), np.float32(1e-7)
        gout = f"G.{gan.G.layers[-1].name}"
        dout = f"D.{gan.D.layers[-1].name}"
        if name in ("tanh_d", "tanh_g"):
            fake = np.tanh(_f32(p.tensor(gbuf, f"{name[-1]}/{gout}.y")).reshape(B, -1)).astype(np.float32)
            if name == "tanh_d":
                p.store(gbuf, "x_d", numerics.f16_bits(fake), rows=(B, 2 * B))
            else:
                gan.phase_tag = "g_update"
                self.state["fake"] = fake
                p.store(gbuf, "x_g", numerics.f16_bits(fake))
        elif name == "loss_d":
            logits = _f32(p.tensor(gbuf, f"d/{dout}.y"))[:, 0]
            prob = _sigmoid(logits)
            y = np.concatenate([np.ones(B), np.zeros(B)]).astype(np.float32)
            self.state["d_loss"] = float(-np.mean(y * np.log(prob + eps) + (1 - y) * np.log(1 - prob + eps)))
            p.store(gbuf, "d/dlogit", numerics.f16_bits(((prob - y) / np.float32(2 * B) * S)[:, None]))
        elif name == "sgd_d":
            gan.opt_d.step(gan.D.layers, self._grads(gbuf, "D"))
            self.write_weights(gbuf, "D")
            gan.phase_tag = "g_update"
        elif name == "loss_g":
            prob = _sigmoid(_f32(p.tensor(gbuf, f"g/{dout}.y"))[:, 0])
            self.state["g_loss"] = float(-np.mean(np.log(prob + eps)))
            p.store(gbuf, "g/dlogit", numerics.f16_bits(((prob - 1) / np.float32(B) * S)[:, None]))
        elif name == "dtanh_g":
            fake = self.state["fake"]
            dfake = p.tensor(gbuf, f"g/D.{gan.D.layers[0].name}.dx")
            dg = _f32(dfake).reshape(B, -1) * (1 - fake * fake)
            p.store(gbuf, f"g/{gout}.dz", numerics.f16_bits(dg.astype(np.float32)))
        else:
            raise ValueError(f"unknown pause {name!r}")

    def finish(self, gbuf, sync=True):
        """After DONE: G's SGD on the host (or, for an ``update`` program, the device's
        weights into the GAN when ``sync``); the step's losses."""
        gan = self.gan
        if not self.p.update:
            gan.opt_g.step(gan.G.layers, self._grads(gbuf, "G"))
            self.write_weights(gbuf, "G")
        elif sync:
            self.sync(gbuf)
        gan.phase_tag = None
        gan.steps += 1
        rec = {"step": gan.steps, "d_loss": self.state["d_loss"], "g_loss": self.state["g_loss"]}
        gan.history.append(rec)
        return rec


def run_step(program, gan, gbuf=None, run=None, weights=True):
    """One training step of ``gan`` through ``program``: the host's :class:`HostStep`
    around ``run(cfg, gbuf, records, on_pause)`` (default: the processor's bit-exact
    program model). Returns ``(losses, gbuf)``; ``gan``'s masters are updated like
    ``GAN.step`` updates them (for an ``update`` program, read from the GBUF).
    ``weights=False`` (``update`` programs) keeps the weights, masters and momenta the
    GBUF already holds."""
    if gbuf is None:
        gbuf = np.zeros(program.cfg.gbuf_depth, dtype=np.uint16)
    host = HostStep(program, gan)
    host.setup(gbuf, weights)
    names = {pz.index: pz.name for pz in program.pauses}
    if run is None:
        run = _model_run
    gbuf = run(program.cfg, gbuf, program.records, lambda index, g: host.pause(names[index], g))
    return host.finish(gbuf), gbuf


def _model_run(cfg, gbuf, records, on_pause):
    from ..processor.model import run_program
    from ..processor.program import ProgramError
    err, task, core_err, gbuf = run_program(cfg, gbuf, records, on_pause=on_pause)
    if err != ProgramError.OK:
        raise RuntimeError(f"program refused: {err!r} at record {task} (core {core_err!r})")
    return gbuf


def verify_step(cfg, train_config=None, steps=1, run=None, update=False):
    """Train a GAN ``steps`` steps through the program (same GBUF reused, host work by
    :class:`HostStep`) and the same GAN through ``GAN.step``; return a list of
    mismatches (empty when every tensor agrees bit for bit).

    Checked after each step: every GEMM record's output rows (and stored mask) against
    the golden gemm it computes, every tensor the host writes at a pause against the
    golden operand it becomes, the losses, and the binary32 masters and binary16
    weights of both networks (in GBUF too) after the SGD updates. With ``update`` the
    program runs the updates (UPDATE records): the weights, masters and momenta stay
    in the GBUF from step to step, and each is checked there against the golden
    optimizer's.
    """
    from ..gan.train import GAN, TrainConfig
    tc = train_config if train_config is not None else TrainConfig()
    ref, hw = GAN(tc), GAN(tc)
    program = compile_gan(cfg, hw, update)
    gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
    bad = []
    for s in range(steps):
        gold = {}

        def recorder(netname):
            def hook(layer, phase, t):
                gold[f"{ref.phase_tag}/{netname}.{layer.name}/{phase}"] = t
            return hook
        hooks = [(n, recorder(n.name)) for n in (ref.G, ref.D)]
        for n, h in hooks:
            n.add_hook(h)
        want = ref.step()
        for n, h in hooks:
            n.remove_hook(h)
        got, gbuf = run_step(program, hw, gbuf, run, weights=s == 0)
        if got != want:
            bad.append(f"step {s}: losses {got!r} != {want!r}")
        for t in program.tasks:
            if t.kind != TaskKind.GEMM:
                continue
            r = t.record
            g = gold[t.gemm]
            m0, m1 = t.rows
            mi, ni = np.arange(r["m"])[:, None], np.arange(r["n"])[None, :]
            o = r["out"]
            y = gbuf[o["base"] + mi * o["s0"] + ni * o["s1"]]
            if not np.array_equal(y, g["out"][m0:m1]):
                bad.append(f"step {s}: {t.name}: output differs in "
                           f"{int((y != g['out'][m0:m1]).sum())} of {y.size} words")
            if r["store_mask"]:
                mk = gbuf[r["mask_out_base"] + mi * r["n"] + ni] & 1
                if not np.array_equal(mk.astype(bool), g["mask_out"][m0:m1]):
                    bad.append(f"step {s}: {t.name}: stored mask differs")
        B = program.batch
        d0, dl, g0, gl = (f"D.{hw.D.layers[0].name}", f"D.{hw.D.layers[-1].name}",
                          f"G.{hw.G.layers[0].name}", f"G.{hw.G.layers[-1].name}")
        host = {"x_d": gold[f"d_update/{d0}/fp"]["A"],
                "x_g": gold[f"g_update/{d0}/fp"]["A"],
                "d/dlogit": gold[f"d_update/{dl}/wg"]["A"].T,
                "g/dlogit": gold[f"g_update/{dl}/bp"]["A"],
                f"g/{gl}.dz": gold[f"g_update/{gl}/bp"]["A"]}
        for name, value in host.items():
            if not np.array_equal(program.tensor(gbuf, name), value.reshape(program.tensors[name][1])):
                bad.append(f"step {s}: host tensor {name!r} differs")
        for net in ("G", "D"):
            for a, b in zip(getattr(ref, net).layers, getattr(hw, net).layers):
                for attr in ("w32", "b32"):
                    if not np.array_equal(getattr(a, attr).view(np.uint32), getattr(b, attr).view(np.uint32)):
                        bad.append(f"step {s}: {net}.{a.name}.{attr} differs")
                for attr, t in (("w16", "w"), ("b16", "b")):
                    if not np.array_equal(program.tensor(gbuf, f"{net}.{a.name}.{t}").ravel(),
                                          getattr(a, attr).ravel()):
                        bad.append(f"step {s}: GBUF {net}.{a.name}.{t} differs from the golden {attr}")
                if update:
                    host = HostStep(program, hw)
                    opt = ref.opt_g if net == "G" else ref.opt_d
                    for t in ("w", "b"):
                        want32 = getattr(a, f"{t}32").view(np.uint32).ravel()
                        wantv = np.asarray(opt.v[(a.name, f"{t}32")], np.float32).view(np.uint32).ravel()
                        for suffix, x in (("32", want32), ("v", wantv)):
                            if not np.array_equal(host._f32(gbuf, f"{net}.{a.name}.{t}{suffix}"), x):
                                bad.append(f"step {s}: GBUF {net}.{a.name}.{t}{suffix} differs from the "
                                           f"golden {'master' if suffix == '32' else 'momentum'}")
    return bad


async def run_step_driver(driver, program, gan, policy, read_back=True, weights=True, sync=True):
    """One training step through ``program`` on a processor behind ``driver`` (a
    :class:`ganpu.host.processor_driver.ProcessorDriver`, or anything with its
    ``write_gbuf``/``read_gbuf``/``run``/``counters``), with :class:`HostStep` serving the
    pauses: at each PAUSE it reads only the tensors the pause reads and writes back only
    those it writes; after DONE it runs G's SGD and writes G's weights.

    Returns ``(losses, gbuf, counters)``: ``gbuf`` is the host's image of the GBUF, with
    every tensor of the step read back when ``read_back`` (so it can be compared with
    :func:`run_step`'s word for word), and ``counters`` the driver's after DONE.

    For an ``update`` program: ``weights=False`` writes only the step's data (the
    device keeps its weights, masters and momenta from the previous step), and
    ``sync`` reads the masters and momenta back into ``gan`` after DONE.
    """
    gbuf = np.zeros(program.cfg.gbuf_depth, dtype=np.uint16)
    host = HostStep(program, gan)
    host.setup(gbuf, weights)

    async def put(names):
        for name in names:
            base, shape = program.tensors[name]
            await driver.write_gbuf(base, gbuf[base:base + int(np.prod(shape))])

    async def get(names):
        for name in names:
            base, shape = program.tensors[name]
            gbuf[base:base + int(np.prod(shape))] = await driver.read_gbuf(base, int(np.prod(shape)))

    pauses = {pz.index: pz for pz in program.pauses}

    async def on_pause(index, drv):
        pz = pauses[index]
        await get(pz.reads)
        host.pause(pz.name, gbuf)
        await put(pz.writes)

    await put(program.inputs if weights else program.data_inputs)
    await driver.run(program.records, policy, on_pause=on_pause)
    counters = await driver.counters()
    await get(program.finish.reads)
    if program.update and sync:
        await get([n for p in program.params for n in (p, p + "32", p + "v")])
    losses = host.finish(gbuf, sync)
    await put(program.finish.writes)
    if read_back:
        await get([n for n in program.tensors if n not in program.finish.writes])
    return losses, gbuf, counters
