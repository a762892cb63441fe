"""`python -m bench.benchmark`: speed, side by side, in one run (see cli.py).

One module per section of the run, so a section can be read, changed or added on its own:
  people      the frames and the enrolled people every section uses;
  in_process  the naive loop and one recognizer's code in this process (no broker);
  stack       the real system for one run: fresh database and vhost, services as processes;
  system      throughput through the real services and broker;
  latency     capture -> committed row and -> dashboard event, within and beyond capacity;
  recorder    the recorder alone;
  matching    matching time against large galleries;
  measure     what the sections share (progress lines, percentiles, the Throughput figure);
  report      the table; cli: the command, which runs the sections asked for.
"""
