"""Synthetic classroom lessons made of real faces (../shared/faces-lfw), for evaluating the
whole system on a lesson whose truth is known: `python -m bench.lessons --help`."""
