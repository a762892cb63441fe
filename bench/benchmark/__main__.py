"""`python -m bench.benchmark`: the package runs as the command."""

from bench.benchmark.cli import main

main()
