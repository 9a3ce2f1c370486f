"""``ganpu build`` and ``ganpu flash`` for the supported boards (``docs/boards.md``)."""

__all__ = ["register"]


def register(sub):
    """Add the ``build`` and ``flash`` subcommands to ``sub`` (the CLI's subparsers)."""
