"""``python -m equilibria`` (and ``torchrun -m equilibria``): the ``equilibria`` command."""

import sys

from equilibria.cli.main import main

sys.exit(main())
