"""Evaluate a whole lesson through the real system: `python -m bench.evaluate --help`."""
