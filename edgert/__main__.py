"""``python -m edgert``: the same as the ``edgert`` command."""

import sys

from .cli.main import main

sys.exit(main())
