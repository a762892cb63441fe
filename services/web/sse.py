"""Server-Sent Events: the wire format, and the stream one browser reads."""

import json
import logging
from collections.abc import Iterator
from typing import Any

from services.web.hub import LiveHub, Subscription

logger = logging.getLogger(__name__)

# Milliseconds the browser waits before reconnecting by itself after a lost stream.
RETRY_MS = 2000


def format_event(name: str, data: Any) -> str:
    """One SSE message: `event:` then the JSON payload on `data:` line(s), then a blank line."""
    if not name or any(char in name for char in "\r\n:"):
        raise ValueError(f"invalid SSE event name {name!r}")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # json.dumps escapes newlines inside strings, but a payload must never end an SSE field early.
    lines = [f"event: {name}", *(f"data: {line}" for line in payload.splitlines() or [""])]
    return "\n".join(lines) + "\n\n"


def format_comment(text: str) -> str:
    """A comment line: ignored by EventSource, but it proves the connection is still open."""
    return "".join(f": {line}\n" for line in text.splitlines() or [""]) + "\n"


def stream(hub: LiveHub, subscription: Subscription, keepalive_s: float) -> Iterator[str]:
    """Everything one client receives, until it disconnects (a write fails) or the hub closes."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while not subscription.closed:
            events = subscription.get(keepalive_s)
            if not events:
                if not subscription.closed:
                    yield format_comment("keep-alive")
                continue
            yield "".join(format_event(event.name, event.data) for event in events)
    finally:
        # Runs when the server closes the generator after the browser went away.
        hub.unsubscribe(subscription)
