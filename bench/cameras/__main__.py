"""`python -m bench.cameras`: the package runs as the command."""

from bench.cameras.cli import main

main()
