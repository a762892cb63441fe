"""The Server-Sent Events wire format and one client's stream."""

import threading

import pytest

from services.web import sse
from services.web.hub import LiveEvent, LiveHub


def test_an_event_is_its_name_then_json_data_then_a_blank_line() -> None:
    text = sse.format_event("attendance", {"name": "Zoë", "n": 1})
    assert text == 'event: attendance\ndata: {"name":"Zoë","n":1}\n\n'


def test_newlines_in_values_cannot_end_the_event_early() -> None:
    text = sse.format_event("x", {"name": "a\n\nb"})
    assert text.count("\n\n") == 1
    assert text.endswith("\n\n")


@pytest.mark.parametrize("name", ["", "two\nlines", "a:b"])
def test_invalid_event_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid SSE event name"):
        sse.format_event(name, {})


def test_comments_are_prefixed_lines() -> None:
    assert sse.format_comment("keep-alive") == ": keep-alive\n\n"
    assert sse.format_comment("a\nb") == ": a\n: b\n\n"


def test_a_stream_sends_retry_status_events_keepalives_and_ends_on_close() -> None:
    hub = LiveHub()
    subscription = hub.subscribe()
    stream = sse.stream(hub, subscription, keepalive_s=0.01)
    assert next(stream) == f"retry: {sse.RETRY_MS}\n\n"
    assert next(stream).startswith("event: broker\n")
    assert next(stream) == ": keep-alive\n\n"  # nothing happened
    hub.publish(LiveEvent("attendance", {"n": 1}))
    hub.publish(LiveEvent("attendance", {"n": 2}))
    assert next(stream) == sse.format_event("attendance", {"n": 1}) + sse.format_event("attendance", {"n": 2})
    threading.Timer(0.05, hub.close).start()
    assert set(list(stream)) <= {": keep-alive\n\n"}  # keep-alives while idle, then the end
    assert hub.client_count == 0


def test_a_client_that_goes_away_is_unsubscribed() -> None:
    hub = LiveHub()
    stream = sse.stream(hub, hub.subscribe(), keepalive_s=0.01)
    next(stream)
    assert hub.client_count == 1
    stream.close()  # what the server does when writing to a closed socket fails
    assert hub.client_count == 0
