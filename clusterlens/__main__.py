"""``python -m clusterlens`` runs the ``clusterlens`` command."""

import sys

from clusterlens.cli import main

sys.exit(main())
