"""Registry of the blocks that ``ganpu generate`` / ``ganpu synth`` know about.

``BLOCKS`` maps a short name to a zero-argument factory returning a fresh
:class:`amaranth.lib.wiring.Component`; adding a block is a one-line entry in ``_SPECS``:

    "name": ("package.module:Class", {keyword arguments}),

Modules are imported only when a block is built, so ``ganpu --help`` stays fast.
"""

import importlib

__all__ = ["BLOCKS", "SPECS", "get", "names", "check_names"]

# name -> (module:Class, constructor keyword arguments)
_SPECS = {
    "fp16_to_fp32": ("ganpu.arith.widen:Fp16ToFp32", {}),
    "fp32_to_fp16": ("ganpu.arith.narrow:Fp32ToFp16", {}),
    "fp16_mul": ("ganpu.arith.mul:Fp16Mul", {}),
    "fp32_add": ("ganpu.arith.add:Fp32Add", {}),
    "fp32_mul": ("ganpu.arith.mul32:Fp32Mul", {}),
    "fp16_mac": ("ganpu.arith.mac:Fp16Mac", {}),
    "core": ("ganpu.core:Core", {}),  # CoreConfig() defaults (4 lanes)
    "processor": ("ganpu.processor.processor:Processor", {"cfg": "small"}),
    "link_framer": ("ganpu.link.framer:Framer", {"cfg": "small"}),
    "update_unit": ("ganpu.processor.update:UpdateUnit", {}),
    "eors_lane": ("ganpu.eors:EorsLane", {}),
    "eors_predictor": ("ganpu.eors:EorsPredictor", {"lanes": 16}),
}

SPECS = dict(_SPECS)


class _Factory:
    """Zero-argument factory for ``target`` ("module:Class") called with ``kwargs``."""

    def __init__(self, name, target, kwargs):
        self.name = name
        self.target = target
        self.kwargs = dict(kwargs)

    def load(self):
        """The block's class (imports its module)."""
        modname, _, clsname = self.target.partition(":")
        module = importlib.import_module(modname)
        try:
            return getattr(module, clsname)
        except AttributeError:
            raise ImportError(f"Block {self.name!r}: module {modname!r} has no class "
                              f"{clsname!r} (registry entry {self.target!r})") from None

    def __call__(self):
        return self.load()(**self.kwargs)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"<block {self.name}: {self.target}({args})>"


BLOCKS = {name: _Factory(name, target, kwargs) for name, (target, kwargs) in _SPECS.items()}


def names():
    """Registered block names, in registry order."""
    return list(BLOCKS)


def get(name):
    """Factory of block ``name``; ``KeyError`` with the valid names if unknown."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise KeyError(f"Unknown block {name!r}; valid names: {', '.join(BLOCKS)}") from None


def check_names(names):
    """``names`` itself if every one is registered, else ``KeyError`` naming the first
    unknown one and the valid names."""
    for name in names:
        get(name)
    return list(names)
