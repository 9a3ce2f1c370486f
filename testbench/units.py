"""The core's blocks for their unit benches: each block with the block RAMs its memory
ports reach, under the block's name (``indexer__rows__valid``, ...), in one design that
one Verilator build serves for every ``test_<block>.py``."""

from blockwrap import Units, WithMemories
from unitcases import CHECKER, SMALL
from ganpu.core import Buf
from ganpu.core.buffers import buffer_shape
from ganpu.core.descriptor import DescriptorChecker
from ganpu.core.distributor import Distributor
from ganpu.core.epilogue import Epilogue
from ganpu.core.host_mux import HostMux
from ganpu.core.indexer import Indexer, entry_layout
from ganpu.core.lane import Lane
from ganpu.core.merge import Merge
from ganpu.core.scanner import Scanner
from ganpu.core.speculator import ROW_SLOTS

NAME = "ganpu_core_units"
MERGE_INPUTS = 3  # two lanes and the skips, as in a 2-lane core


def _buf(cfg, buf, ports):
    return (*buffer_shape(cfg, buf), ports)


def _factories(cfg=SMALL):
    """``{name: factory}`` of every block, each made ready to drop into :class:`Units`."""
    g = cfg.geom
    wpr = g.depth("mask") // cfg.eors_lanes
    return {
        "checker": lambda: DescriptorChecker(CHECKER),
        "indexer": lambda: WithMemories(Indexer(g), {
            "a": (16, g.depth("a"), ["a_rd"]),
            "acomp": (entry_layout(g), g.depth("a"), ["acomp_wr"])}),
        "scanner": lambda: WithMemories(Scanner(cfg), {
            "mask_in": _buf(cfg, Buf.MASK_IN, ["mask_rd", "mask_wr"]),
            "bias": _buf(cfg, Buf.BIAS, ["bias_rd"]),
            "pm": (cfg.eors_lanes, ROW_SLOTS * wpr, ["pm_rd"])}),
        "distributor": lambda: Distributor(cfg),
        "lane": lambda: WithMemories(Lane(g), {
            "acomp": (entry_layout(g), g.depth("a"), ["acomp_rd"]),
            "b": (16, g.depth("b"), ["b_rd"])}),
        "merge": lambda: Merge(g, MERGE_INPUTS),
        "epilogue": lambda: Epilogue(g),
        "host_mux": lambda: WithMemories(HostMux(cfg), {
            b.name.lower(): _buf(cfg, b, [f"{b.name.lower()}_rd", f"{b.name.lower()}_wr"])
            for b in Buf}),
    }


BLOCKS = tuple(_factories())


def design(names=BLOCKS):
    """:class:`Units` of the blocks ``names``."""
    factories = _factories()
    return Units({name: factories[name]() for name in names})


def run(sim, block, case):
    """Run ``tb_<block>`` with the pickled case file ``case``. Verilator builds every
    block into one model (its C++ build is the slow part, and one serves all benches);
    Icarus compiles in a moment and simulates only what it is given, so it gets the
    block alone."""
    import harness
    if sim == "verilator":
        top, name = design(), NAME
    else:
        top, name = design([block]), f"{NAME}_{block}"
    harness.run(sim, top, name, f"tb_{block}", env={"GANPU_CASE": case, "GANPU_PREFIX": block})
