"""One router per resource; `services.api.app` includes them all."""
