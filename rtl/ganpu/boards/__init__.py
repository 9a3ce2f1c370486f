"""Board tops: the processor, its host link and the board's pins (``docs/boards.md``)."""
