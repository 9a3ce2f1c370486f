"""cocotb bench for :class:`ganpu.core.speculator.Speculator` alone, its memories and
its neighbours modelled in Python.

The pytest entry point (``test_speculator.py``) lowers tasks, runs
:meth:`Speculator.model` on each and pickles them (GANPU_TASKFILE). Per task the bench
pulses ``start``, then every cycle

* answers each read port (compressed A, BW, BIAS) with the word addressed one cycle
  earlier, as the core's synchronous block RAMs do;
* offers the task's row records on ``rows_in`` (the indexer), with random idle cycles;
* takes ``rows_out`` with random back-pressure and, like the scanner, releases each row
  with ``row_done`` some cycles after taking it;
* records every mask-store write.

and checks, bit and cycle exact:

* the k-th mask-store write of an EORS task is group g of row r in issue order, at
  address ``(r % ROW_SLOTS) * words_per_row + g``, with the model's word, exactly
  ``latency`` cycles after the cycle that issued the group's last term (found from
  ``cycles``, which counts issue cycles);
* the row records leave unchanged and in order, each no earlier than 2 cycles after its
  last word is written (exactly 2 when nothing waits ahead of it), and the words of a
  row still hold the model's values when it is taken and when it is released (no slot
  is overwritten early);
* ``cycles`` ends at the model's issue cycles and ``busy`` falls;
* a task without EORS passes every row record through in the same cycle and writes
  nothing.

The task's level (``rel``, the descriptor's ``eors_rel``) and sampling key (``key``,
its ``eors_key``) are driven from the task file; with sampling
(``CoreConfig.eors_sample_log2``) the model's words carry the sampled bits, a pure
function of the task's key, the row and the word (nothing carried between tasks).
"""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from packing import port_uint


class _Ports:
    def __init__(self, dut):
        self.dut = dut
        self.reads = {name: (getattr(dut, f"{name}__addr"), getattr(dut, f"{name}__data"))
                      for name in ("acomp_rd", "bw_rd", "bias_rd")}

    def set(self, **values):
        for name, v in values.items():
            getattr(self.dut, name).value = v

    def get(self, name):
        return port_uint(getattr(self.dut, name).value)


async def _run_task(dut, ports, task, meta, rng, log):
    P, slots, wpr, latency = meta["lanes"], meta["row_slots"], meta["words_per_row"], meta["latency"]
    row_bits = meta["row_bits"]
    enable = task["enable"]
    rows = task["rows"]
    words = task["words"]
    mems = {"acomp_rd": task["acomp"], "bw_rd": task["bw"], "bias_rd": task["bias_mem"]}
    G = -(-task["n"] // P)

    # expected writes in issue order, with the issue count that ends each group
    issue_end, expect = [], []
    total = 0
    if enable:
        for r, (s, e) in enumerate(rows):
            for g in range(G):
                # a group's bias rides as its first term in absolute mode (one cycle)
                total += max(e - s + int(bool(task["bias"]) and meta["bias_first"]), 1)
                expect.append(((r % slots) * wpr + g, words[r][g], r, g))
                issue_end.append(total)
        assert total == task["cycles"], "task file: model cycles disagree with its words"

    ports.set(n=task["n"], k=task["k"], bias=task["bias"], bias_word=task["bias_word"],
              rel=task["rel"], key=task["key"], enable=enable, start=1)
    await FallingEdge(dut.clk)
    ports.set(start=0)

    store = {}                   # the mask store, address -> word
    writes = []                  # (cycle, addr, data)
    first_seen = {}              # issue count -> first cycle ``cycles`` shows it
    prev_addr = {name: 0 for name in mems}
    sent = received = released = 0
    taken_at = []                # cycle each row left on rows_out
    last_write = {}              # row -> cycle of its last word's write
    done_due = []                # cycles at which a taken row is released
    out_valid_prev = False
    gap = rng.random() < 0.3
    ready_p = rng.choice([1.0, 0.7, 0.3])
    t = 0
    limit = 200 + 4 * (task["cycles"] + len(rows) * (latency + 40))
    while True:
        # --- just after the rising edge: registered outputs are settled
        for name, (addr, data) in ports.reads.items():
            data.value = mems[name][prev_addr[name]]
            prev_addr[name] = port_uint(addr.value)
        cyc = ports.get("cycles")
        first_seen.setdefault(cyc, t)
        if ports.get("pm_wr__en"):
            a, d = ports.get("pm_wr__addr"), ports.get("pm_wr__data")
            k = len(writes)
            assert enable, f"cycle {t}: mask-store write in a task without EORS"
            assert k < len(expect), f"cycle {t}: write {k} beyond the {len(expect)} expected"
            ea, ed, r, g = expect[k]
            assert (a, d) == (ea, ed), (f"write {k} (row {r}, group {g}) at cycle {t}: "
                                        f"addr {a} data {d:#x}, expected addr {ea} data {ed:#x}")
            issued = first_seen.get(issue_end[k])
            assert issued is not None and t == issued - 1 + latency, (
                f"write {k} (row {r}, group {g}) at cycle {t}; its last term issued at cycle "
                f"{None if issued is None else issued - 1}, latency {latency}")
            writes.append((t, a, d))
            store[a] = d
            if g == G - 1:
                last_write[r] = t
        # --- drive this cycle's inputs
        if sent < len(rows) and not gap:
            s, e = rows[sent]
            ports.set(rows_in__valid=1, rows_in__payload=s | (e << row_bits))
        else:
            ports.set(rows_in__valid=0)
        ports.set(rows_out__ready=int(rng.random() < ready_p))
        release = bool(done_due) and done_due[0] <= t
        if release and enable:
            r = released
            for g in range(G):
                a = (r % slots) * wpr + g
                assert store.get(a) == words[r][g], (
                    f"cycle {t}: row {r} released but its word {g} is {store.get(a)}, "
                    f"expected {words[r][g]:#x} (slot overwritten early?)")
        ports.set(row_done=int(release))
        if release:
            done_due.pop(0)
            released += 1
        # --- combinational outputs for these inputs
        await Timer(1, unit="ns")
        in_fire = ports.get("rows_in__valid") and ports.get("rows_in__ready")
        out_valid = bool(ports.get("rows_out__valid"))
        out_fire = out_valid and ports.get("rows_out__ready")
        if out_valid and not out_valid_prev and enable and received < len(rows):
            # a row that appears on an empty output: exactly 2 cycles after its last word
            # when nothing waited ahead of it
            r = received
            if r in last_write and (r == 0 or taken_at[r - 1] < last_write[r]):
                assert t == last_write[r] + 2, (
                    f"row {r} offered at cycle {t}, its last word written at {last_write[r]}")
        out_valid_prev = out_valid and not out_fire
        if out_fire:
            payload = ports.get("rows_out__payload")
            got = (payload & ((1 << row_bits) - 1), payload >> row_bits)
            assert received < len(rows), f"cycle {t}: extra row record {got}"
            assert got == tuple(rows[received]), (
                f"cycle {t}: row record {received} is {got}, expected {tuple(rows[received])}")
            if enable:
                r = received
                assert r in last_write and t >= last_write[r] + 2, (
                    f"row {r} left at cycle {t} before its last word was written "
                    f"(at {last_write.get(r)})")
                for g in range(G):
                    assert store.get((r % slots) * wpr + g) == words[r][g], (
                        f"cycle {t}: row {r} left with word {g} not written")
            else:
                assert in_fire and sent == received, \
                    f"cycle {t}: without EORS a row record must pass in the same cycle"
            taken_at.append(t)
            received += 1
            done_due.append(t + rng.choice([0, 1, 3, 8, 2 * task["n"]]))
        if in_fire:
            sent += 1
        if rng.random() < 0.2:
            gap = not gap
        t += 1
        await FallingEdge(dut.clk)
        if received == len(rows) and released == len(rows) and not ports.get("busy"):
            break
        assert t < limit, (f"task {task['name']}: stuck after {t} cycles: {sent} rows in, "
                           f"{received} out, {released} released, {len(writes)} writes")
    ports.set(rows_in__valid=0, rows_out__ready=0, row_done=0)
    assert len(writes) == len(expect), f"{len(writes)} mask-store writes, expected {len(expect)}"
    assert ports.get("cycles") == task["cycles"], \
        f"cycles {ports.get('cycles')}, model {task['cycles']}"
    log.info("%s: %d rows, %d words, %d issue cycles in %d cycles", task["name"], len(rows),
             len(writes), task["cycles"], t)
    return t


@cocotb.test()
async def speculator_matches_model(dut):
    with open(os.environ["GANPU_TASKFILE"], "rb") as f:
        bundle = pickle.load(f)
    meta, tasks = bundle["meta"], bundle["tasks"]
    rng = random.Random(int(os.environ.get("GANPU_SEED", "1")))
    ports = _Ports(dut)
    # every input driven before the clock's first edge (Icarus would clock Z otherwise)
    ports.set(rst=0, start=0, enable=0, n=0, k=0, bias=0, bias_word=0, rel=0, rows_in__valid=0,
              rows_in__payload=0, rows_out__ready=0, row_done=0)
    for _, data in ports.reads.values():
        data.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    total = 0
    for task in tasks:
        total += await _run_task(dut, ports, task, meta, rng, dut._log)
    dut._log.info("%d tasks bit- and cycle-exact in %d cycles", len(tasks), total)
