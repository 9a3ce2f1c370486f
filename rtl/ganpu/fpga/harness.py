"""The synthesis harness: a block's ports never become FPGA pins.

:class:`SynthHarness` feeds every input bit of a block from a shift chain loaded
serially from one pin, registers every output bit and folds them into one pin through
a registered XOR tree. Nothing can be optimized away, and every path through the block
starts and ends at a register. The harness costs flip-flops and a few LUTs:
:func:`harness_overhead` counts them in the synthesized netlist. :class:`BoardTop`
puts the harness on a board (button 0 in, LED 0 out).
"""

from amaranth.hdl import Module, Signal, Value, Cat
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SynthHarness", "BoardTop", "harness_overhead"]


def _port_bits(component):
    """(input values, output values) of ``component``, nested members flattened."""
    ins, outs = [], []
    for _path, member, value in component.signature.flatten(component):
        (ins if member.flow == In else outs).append(Value.cast(value))
    return ins, outs


def _xor_tree(n):
    """Sizes of the registered 4:1 XOR levels that fold ``n`` bits into one."""
    sizes = []
    while n > 1:
        n = (n + 3) // 4
        sizes.append(n)
    return sizes


class SynthHarness(wiring.Component):
    """Wraps ``block`` so that it needs one input and one output pin.

    Every input bit of the block comes from a shift chain that ``si`` feeds one bit
    per cycle; every output bit is registered, and the registered outputs are folded
    into ``so`` by a tree of registered 4-input XORs (one LUT4 deep per level), so
    paths through the block are register to register and none of its logic is
    unobservable.

    Ports
    -----
    si : In(1)   serial input (shifted into the chain every cycle)
    so : Out(1)  XOR of all outputs, ``len(_xor_tree(n_out)) + 1`` cycles later
    """

    si: In(1)
    so: Out(1)

    def __init__(self, block):
        self.block = block
        ins, outs = _port_bits(block)
        self.n_in = sum(len(v) for v in ins)
        self.n_out = sum(len(v) for v in outs)
        if self.n_out == 0:
            raise ValueError(f"Block {block!r} has no output bits; nothing to synthesize")
        super().__init__()

    def overhead(self):
        """Upper bound of the flip-flops and LUT4s the harness adds, from its structure
        (synthesis drops the registers of constant output bits)."""
        tree = _xor_tree(self.n_out)
        return {"ff": self.n_in + self.n_out + sum(tree), "lut4": sum(tree)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.block
        ins, outs = _port_bits(dut)

        # the hx_ prefix lets harness_overhead() find these registers in the netlist
        chain = Signal(max(self.n_in, 1), name="hx_chain")
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)

        # registering every output first keeps the XOR tree off the block's paths
        level = Signal(self.n_out, name="hx_out")
        m.d.sync += level.eq(Cat(*outs))
        for depth, n in enumerate(_xor_tree(self.n_out)):
            nxt = Signal(n, name=f"hx_xor{depth}")
            m.d.sync += [nxt[k].eq(level[4 * k:4 * k + 4].xor()) for k in range(n)]
            level = nxt
        m.d.comb += self.so.eq(level[0])
        return m


class BoardTop(wiring.Component):
    """The harness on a board: ``si`` from button 0, ``so`` to LED 0, board clock."""

    def __init__(self, block):
        self.harness = SynthHarness(block)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.harness = h = self.harness
        m.submodules.si = si = io.Buffer("i", platform.request("button", 0, dir="-"))
        m.submodules.so = so = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [h.si.eq(si.i), so.o.eq(h.so)]
        return m


def harness_overhead(netlist, n_in):
    """What the harness and the platform's clock/reset logic cost in a build.

    ``netlist`` is Yosys' ``write_json`` output of the flattened design. Flip-flops are
    attributed by the names of the nets they drive: ``hx_*`` nets are the harness' (its
    shift chain, output registers and XOR tree), ``cd_*`` nets the platform's reset
    logic. Each XOR-tree register is fed by one 4-input XOR, i.e. one LUT4, so the
    tree's register count is also its LUT4 count. The shift chain's nets usually keep
    the block's port names instead (Yosys keeps one name per net), so the chain counts
    as ``n_in`` registers: a shift register cannot be trimmed.
    """
    top = next((m for m in netlist["modules"].values()
                if m.get("attributes", {}).get("top")), None)
    if top is None:
        top = next(iter(netlist["modules"].values()))
    names = {}
    for name, net in top["netnames"].items():
        if net.get("hide_name"):
            continue
        for bit in net["bits"]:
            if isinstance(bit, int):
                names.setdefault(bit, []).append(name)
    ff = {"chain": 0, "out": 0, "xor": 0, "platform": 0}
    for cell in top["cells"].values():
        q = cell["connections"].get("Q")
        if not (q and cell["type"].startswith(("TRELLIS_FF", "SB_DFF"))):
            continue
        owners = names.get(q[0], [])
        leaves = [n.rsplit(".", 1)[-1] for n in owners]
        for part in ("chain", "out", "xor"):
            if any(n.startswith(f"hx_{part}") for n in leaves):
                ff[part] += 1
                break
        else:
            if owners and all(n.startswith("cd_") for n in owners):
                ff["platform"] += 1
    ff["chain"] = max(ff["chain"], n_in)
    return {"ff": sum(ff.values()), "lut4": ff["xor"], "ff_by_part": ff}
