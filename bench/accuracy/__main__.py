"""`python -m bench.accuracy`: the package runs as the command."""

from bench.accuracy.cli import main

raise SystemExit(main())
