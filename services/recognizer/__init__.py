"""Recognizer workers: detect faces in frames, encode them, name enrolled students (or not)."""
