"""The processor: several compute cores around a global tensor buffer (GBUF), a DMA, a
task table and the ASTM scheduler, behind a host bus (``docs/processor.md``).

``config`` (:class:`ProcessorConfig`, named configs) and ``program`` (the task record,
bus and register formats shared with the host) are defined here, in the gateware
folder, so the host imports them and not the other way round.
"""

from .config import ProcessorConfig, CONFIGS, config

__all__ = ["ProcessorConfig", "CONFIGS", "config"]
