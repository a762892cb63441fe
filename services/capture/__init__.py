"""Capture: reads a camera, stream, video file or image folder and publishes sampled frames."""
