"""``python -m medbench`` runs the command line."""

from medbench.cli import main

raise SystemExit(main())
