"""Server-Sent Events: the wire format, and the stream one browser reads.

A stream carries only what its signed-in person may see (the subscription's `Visible`), and
asks again every `refresh_s`: sessions begin and end while a page stays open all day. When the
API no longer accepts the person's token (signed out, expired, disabled), the stream says
`signed_out` and ends.
"""

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from services.web.hub import LiveHub, Subscription, Visible

logger = logging.getLogger(__name__)

# Milliseconds the browser waits before reconnecting by itself after a lost stream.
RETRY_MS = 2000
# Seconds between two checks of what a stream's person may see (and that they are still signed in).
REFRESH_S = 60.0

# What may be seen now; None once the person is signed out. Raising keeps what was allowed.
Refresh = Callable[[], Visible | None]


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


def stream(
    hub: LiveHub,
    subscription: Subscription,
    keepalive_s: float,
    refresh: Refresh | None = None,
    refresh_s: float = REFRESH_S,
) -> Iterator[str]:
    """Everything one client receives, until it disconnects (a write fails), the hub closes, or
    `refresh` says its person is signed out."""
    checked = time.monotonic()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while not subscription.closed:
            if refresh is not None and time.monotonic() - checked >= refresh_s:
                checked = time.monotonic()
                if not _refreshed(subscription, refresh):
                    yield format_event("signed_out", {})
                    return
            events = subscription.get(keepalive_s)
            if not events:
                if not subscription.closed:
                    yield format_comment("keep-alive")
                continue
            yield "".join(format_event(event.name, event.data) for event in events)
    finally:
        # Runs when the server closes the generator after the browser went away.
        hub.unsubscribe(subscription)


def _refreshed(subscription: Subscription, refresh: Refresh) -> bool:
    """Apply what the person may see now; False if they are signed out."""
    try:
        visible = refresh()
    except Exception as error:  # the API is away: keep what was allowed, try again later
        logger.warning("live stream: could not refresh what its person may see (%s)", error)
        return True
    if visible is None:
        return False
    subscription.set_visible(visible)
    return True
