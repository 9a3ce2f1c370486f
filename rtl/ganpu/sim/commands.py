"""``ganpu sim``: the native-speed simulator server (``docs/sim.md``)."""

__all__ = ["register"]


def register(sub):
    """Add the ``sim`` subcommand to ``sub`` (the CLI's subparsers)."""
