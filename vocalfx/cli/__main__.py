"""``python -m vocalfx.cli``: the same as the ``vocalfx`` command."""

import sys

from . import main

sys.exit(main())
