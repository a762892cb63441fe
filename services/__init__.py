"""The attendance system's microservices: capture, recognizer, recorder, api, web (and common)."""
