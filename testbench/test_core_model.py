"""The core's task model on the descriptor defects found by random descriptors: an OUT
layout in which outputs share elements is refused (``Error.OUT_OVERLAP``), by a rule
that accepts every row- or column-block layout and never a colliding one."""

import itertools

import numpy as np
import pytest

from ganpu.core import CoreConfig, Geometry, model
from ganpu.core.descriptor import Error
from ganpu.host.lower import fc_desc, fc_fp

GOOD = fc_desc(m=3, n=4, k=2, a_sm=2, a_sk=1, b_sn=2, b_sk=1, o_sm=4, o_sn=1)


@pytest.mark.parametrize("what,fields", [
    ("o_sn = 0 with N > 1", dict(o_sn=0)),
    ("o_sm = 0 with M > 1", dict(o_sm=0)),
    ("rows interleave", dict(o_sm=2, o_sn=1)),
    ("columns interleave", dict(o_sm=1, o_sn=2)),
    ("both strides 0", dict(o_sm=0, o_sn=0)),
])
def test_overlapping_outputs_are_refused(what, fields):
    g = Geometry()
    assert model.check({**GOOD, **fields}, g) == Error.OUT_OVERLAP, what
    bufs = CoreConfig().zero_buffers()
    bufs["out"][:] = 0x1234
    err, new = model.run_task({**GOOD, **fields}, bufs, g)
    assert err == Error.OUT_OVERLAP
    for name in bufs:
        np.testing.assert_array_equal(new[name], bufs[name], err_msg=f"{what}: {name} written")


@pytest.mark.parametrize("fields", [dict(), dict(o_sm=1, o_sn=3), dict(o_sm=9, o_sn=2),
                                    dict(m=1, o_sm=0), dict(n=1, o_sn=0), dict(m=1, n=1, o_sm=0, o_sn=0)])
def test_disjoint_layouts_pass(fields):
    assert model.check({**GOOD, **fields}, Geometry()) == Error.OK


def test_out_disjoint_never_accepts_a_collision():
    """Every small (M, N, o_sm, o_sn): an accepted layout gives each output its own
    element; row-major and column-major blocks (and their padded forms) are accepted."""
    accepted = refused_injective = 0
    for M, N, sm, sn in itertools.product(range(1, 5), range(1, 5), range(0, 14), range(0, 14)):
        addrs = {m * sm + n * sn for m in range(M) for n in range(N)}
        injective = len(addrs) == M * N
        ok = model.out_disjoint(M, N, sm, sn)
        assert not ok or injective, (M, N, sm, sn)
        accepted += ok
        refused_injective += injective and not ok
        if (sn >= 1 and sm >= N * sn) or (sm >= 1 and sn >= M * sm):
            assert ok, (M, N, sm, sn)
    # not vacuous; what it gives up are interleaved layouts (docs/descriptor.md)
    assert accepted > 1000 and refused_injective > 0


def test_lowered_tasks_pass_the_overlap_rule():
    """The host lowering's layouts (row-major OUT) are never refused for overlap."""
    rng = np.random.default_rng(0)
    for M, N, K in [(1, 1, 1), (1, 7, 3), (7, 1, 3), (5, 6, 7)]:
        desc, _ = fc_fp(rng.integers(0, 1 << 15, (M, K)).astype(np.uint16),
                        rng.integers(0, 1 << 15, (N, K)).astype(np.uint16), np.zeros(N, np.uint16))
        assert model.check(desc, Geometry()) == Error.OK
