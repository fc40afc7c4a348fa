"""``python -m clusterlens.cli``: the same as the ``clusterlens`` command."""

import sys

from clusterlens.cli import main

sys.exit(main())
