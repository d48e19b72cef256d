"""``python -m hfsent`` is the ``hfsent`` command."""

import sys

from .cli import main

sys.exit(main())
