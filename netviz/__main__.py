"""``python -m netviz`` runs the command line."""

import sys

from netviz.cli import main

sys.exit(main())
