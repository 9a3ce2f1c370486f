"""The suite's order and its CPU record (docs/verification.md, "Test time").

* Order: the tests of ``durations.json`` (seconds per test id, written by
  ``scripts/suite_time.py --table``) run first, longest first; every other test keeps
  pytest's order after them. pytest-xdist hands each worker the next test when it has
  room, so this is longest-first list scheduling: the two workers finish together
  instead of one running a long simulation alone at the end. Every worker sorts alike,
  so they still collect the same list.
* Record: each test's CPU seconds (its process and the simulators and compilers it
  waited for) go into its report as the ``cpu_seconds`` property, which
  ``--junitxml`` writes out and ``scripts/suite_time.py`` reads.
"""

import json
import resource
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The tests import the bench helpers (harness, vectors) from this folder.
sys.path.insert(0, str(HERE))

DURATIONS = HERE / "durations.json"
_START = pytest.StashKey[float]()


def _cpu():
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_collection_modifyitems(config, items):
    table = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    known = sorted((it for it in items if it.nodeid in table), key=lambda it: -table[it.nodeid])
    rest = [it for it in items if it.nodeid not in table]
    items[:] = known + rest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item.stash[_START] = _cpu()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # before the teardown report is made: junit takes a test's properties from it
    if call.when == "teardown" and _START in item.stash:
        item.user_properties.append(("cpu_seconds", round(_cpu() - item.stash[_START], 2)))
    return (yield)

