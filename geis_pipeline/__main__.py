"""``python -m geis_pipeline`` runs the ``geis-pipeline`` command."""

import sys

from geis_pipeline.cli import main

sys.exit(main())
