"""Many cameras against a few recognizers: per-camera processed rate and per-frame cost at 1x,
2x and 4x overload (issue 11, item 5)."""
