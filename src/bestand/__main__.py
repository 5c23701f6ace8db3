"""``python -m bestand`` runs the CLI."""

from __future__ import annotations

import sys

from bestand.cli import main

sys.exit(main())
