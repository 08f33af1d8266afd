"""``python -m potlab.space count --order 2``: the space CLI without the potlab wrapper."""

import sys

from potlab.space.cli import main

sys.exit(main())
