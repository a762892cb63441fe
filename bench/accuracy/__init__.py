"""`python -m bench.accuracy`: how accurate recognition is on labeled photos (see cli.py).

One module per concern, so a new protocol or figure has an obvious home and the pure parts
stay testable without faces:
  dataset   the labeled folder and who is enrolled, who is a stranger (no faces);
  metrics   rates from probe distances under the product's naming rule (no faces, no files);
  pairs     LFW's pairs.txt protocol and pair verification (no faces);
  tracks    the track protocol at school scale: the whole decision against gallery size (no faces);
  probing   the product's face engine run on the photos: enrollment, probes, pairs;
  report    the text and JSON reports; chart: the PNG;
  cli       the command, which ties them together; calibrate: the track protocol's command.
"""
