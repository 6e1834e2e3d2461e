"""``python -m geis_pipeline`` runs the ``geis-pipeline`` command."""

from geis_pipeline.cli import entry

entry()
