"""Measuring tools: speed (benchmark) and accuracy, run from the repository root."""
