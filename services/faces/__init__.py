"""The face engine as a library: detection, encoding, matching, enrollment checks and the
recognition settings. The recognizer workers and the API both import it, so an enrolled
encoding is computed by exactly the code that later compares it."""
