"""Where the test suite's time goes, and what it would take on N idle CPUs.

Measure (a clean clone, so every simulator build is made; docs/verification.md,
"Test time")::

    python -m pytest -W error --durations=0 --junitxml=build/suite.xml | tee build/suite.log
    python scripts/suite_time.py build/suite.xml

The junit XML carries, per test, the wall seconds of its three phases and the CPU
seconds it used, its simulator's included (the ``cpu_seconds`` property that
``testbench/conftest.py`` records). A pytest log with ``--durations=0`` lines works too
(wall seconds only). CPU seconds are what a loaded machine does not inflate much; the
estimate of an idle run schedules them as pytest-xdist does with the conftest's order
(longest first, each test to the first free worker) on ``--workers`` CPUs.

The Verilator/Icarus build folders (``build/sim/*/built``, written by
:mod:`ganpu.sim.runner`) hold each build's own seconds: ``--builds build/sim`` sums
them by simulator, the build-versus-run split.

``--table testbench/durations.json`` writes the per-test seconds that
``testbench/conftest.py`` orders the suite by (tests of at least ``--min-seconds``).
"""

import argparse
import heapq
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

DURATION = re.compile(r"^\s*([0-9.]+)s (setup|call|teardown)\s+(\S+)")


def from_log(path):
    """``{nodeid: {"wall": s}}`` from pytest's ``--durations`` lines."""
    tests = defaultdict(lambda: {"wall": 0.0})
    for line in Path(path).read_text(errors="replace").splitlines():
        m = DURATION.match(line)
        if m:
            tests[m.group(3)]["wall"] += float(m.group(1))
    return dict(tests)


def _nodeid(case):
    """junit's classname ``testbench.test_core`` + name back to a pytest node id."""
    cls, name = case.get("classname", ""), case.get("name", "")
    parts = cls.split(".")
    # the module is the last dotted part that starts with test_; a class follows it
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].startswith("test_"):
            mod = "/".join(parts[:i + 1]) + ".py"
            return "::".join([mod, *parts[i + 1:], name])
    return f"{cls}::{name}"


def from_junit(path):
    """``{nodeid: {"wall": s, "cpu": s}}`` from a junit XML (``cpu`` where recorded)."""
    tests = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        entry = {"wall": float(case.get("time", 0.0))}
        for prop in case.iter("property"):
            if prop.get("name") == "cpu_seconds":
                entry["cpu"] = float(prop.get("value"))
        if case.find("skipped") is not None:
            entry["skipped"] = True
        tests[_nodeid(case)] = entry
    return tests


def builds(root):
    """Per simulator: number of builds and their wall / CPU seconds (stamps that record them)."""
    out = defaultdict(lambda: {"builds": 0, "wall": 0.0, "cpu": 0.0})
    for stamp in Path(root).glob("*/built"):
        fields = dict(line.split(None, 1) for line in stamp.read_text().splitlines()[1:] if " " in line)
        if "seconds" not in fields:
            continue
        sim = "verilator" if "-verilator-" in stamp.parent.name else "icarus"
        out[sim]["builds"] += 1
        out[sim]["wall"] += float(fields["seconds"])
        out[sim]["cpu"] += float(fields.get("cpu_seconds", 0.0))
    return dict(out)


def schedule(times, workers):
    """Makespan of list scheduling, longest first, each job to the first free worker
    (pytest-xdist's load scheduling in the conftest's order)."""
    heap = [0.0] * workers
    for t in sorted(times, reverse=True):
        heapq.heappush(heap, heapq.heappop(heap) + t)
    return max(heap)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="junit XML (--junitxml) or pytest log with --durations=0")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the estimate (default 2)")
    ap.add_argument("--top", type=int, default=25, help="longest tests to list")
    ap.add_argument("--builds", help="build cache root to sum build times from (build/sim)")
    ap.add_argument("--table", help="write the conftest's durations table here")
    ap.add_argument("--min-seconds", type=float, default=20.0,
                    help="tests shorter than this stay out of the table (default 20)")
    args = ap.parse_args(argv)

    path = Path(args.report)
    tests = from_junit(path) if path.suffix == ".xml" else from_log(path)
    if not tests:
        sys.exit(f"no test durations in {path}")
    has_cpu = any("cpu" in t for t in tests.values())
    key = "cpu" if has_cpu else "wall"
    cost = {n: t.get(key, t["wall"]) for n, t in tests.items()}
    total_wall = sum(t["wall"] for t in tests.values())
    total = sum(cost.values())
    print(f"{len(tests)} tests; wall seconds summed {total_wall:.0f}"
          + (f"; CPU seconds summed {total:.0f}" if has_cpu else ""))
    print(f"\nlongest {args.top} by {key} seconds:")
    for name, c in sorted(cost.items(), key=lambda kv: -kv[1])[:args.top]:
        t = tests[name]
        extra = f"  (wall {t['wall']:.0f})" if has_cpu else ""
        print(f"  {c:8.1f}  {name}{extra}")
    longest = max(cost.values())
    est = schedule(cost.values(), args.workers)
    print(f"\nidle {args.workers}-CPU estimate from {key} seconds: {est:.0f} s ({est / 60:.1f} min); "
          f"sum / {args.workers} = {total / args.workers:.0f} s, longest test {longest:.0f} s")
    if args.builds:
        for sim, b in sorted(builds(args.builds).items()):
            print(f"builds on {sim}: {b['builds']}, {b['wall']:.0f} s wall, {b['cpu']:.0f} CPU s")
    if args.table:
        table = {n: round(c, 1) for n, c in sorted(cost.items(), key=lambda kv: -kv[1])
                 if c >= args.min_seconds}
        Path(args.table).write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {len(table)} entries to {args.table}")


if __name__ == "__main__":
    main()
