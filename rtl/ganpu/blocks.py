"""Registry of the blocks that ``ganpu generate`` / ``ganpu synth`` know about.

``BLOCKS`` maps a short name to a zero-argument factory returning a fresh
:class:`amaranth.lib.wiring.Component`. A block whose module does not exist (yet) is
simply absent from ``BLOCKS``; adding one is a one-line entry in ``_SPECS``:

    "name": ("package.module:Class", {keyword arguments}),

A block is absent when its module, or a ``ganpu`` module it imports, does not exist
yet (``UNAVAILABLE`` records why), so blocks being written elsewhere in the tree do not
break the others. Any other import error is a real bug and is raised.
"""

import importlib
import importlib.util

__all__ = ["BLOCKS", "SPECS", "UNAVAILABLE", "get", "names"]

# name -> (module:Class, constructor keyword arguments)
_SPECS = {
    "fp16_to_fp32": ("ganpu.arith.widen:Fp16ToFp32", {}),
    "fp32_to_fp16": ("ganpu.arith.narrow:Fp32ToFp16", {}),
    "fp16_mul": ("ganpu.arith.mul:Fp16Mul", {}),
    "fp32_add": ("ganpu.arith.add:Fp32Add", {}),
    "fp16_mac": ("ganpu.arith.mac:Fp16Mac", {}),
    "core": ("ganpu.core:Core", {"lanes": 4}),
    "eors_lane": ("ganpu.eors:EorsLane", {}),
    "eors_predictor": ("ganpu.eors:EorsPredictor", {"lanes": 16}),
}

SPECS = dict(_SPECS)


def _missing(target):
    """Why ``target`` cannot be loaded yet, or None if it can.

    Only a missing *project* module or class counts as "not there yet"; a missing
    third-party package or a broken module raises, so real bugs stay loud.
    """
    modname, _, clsname = target.partition(":")
    try:
        if importlib.util.find_spec(modname) is None:
            return f"module {modname} does not exist"
        module = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "ganpu" or exc.name.startswith("ganpu.")):
            return f"{modname} needs {exc.name}, which does not exist"
        raise
    if not hasattr(module, clsname):
        return f"module {modname} has no class {clsname}"
    return None


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


BLOCKS = {}
UNAVAILABLE = {}
for _name, (_target, _kwargs) in _SPECS.items():
    _why = _missing(_target)
    if _why is None:
        BLOCKS[_name] = _Factory(_name, _target, _kwargs)
    else:
        UNAVAILABLE[_name] = _why


def names():
    """Registered block names, in registry order."""
    return list(BLOCKS)


def get(name):
    """Factory of block ``name``; ``KeyError`` with the valid names if unknown."""
    try:
        return BLOCKS[name]
    except KeyError:
        why = UNAVAILABLE.get(name)
        hint = f" ({name!r} is registered but not available: {why})" if why else ""
        raise KeyError(f"Unknown block {name!r}{hint}; valid names: {', '.join(BLOCKS) or '(none)'}") \
            from None
