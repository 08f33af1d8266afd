"""``python -m potlab.cli ...`` runs the ``potlab`` command."""

import sys

from potlab.cli import main

sys.exit(main())
