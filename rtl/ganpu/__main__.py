"""``python -m ganpu``: the same as the ``ganpu`` command."""

import sys

from .cli import main

sys.exit(main())
