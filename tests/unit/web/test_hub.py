"""Fan-out to live clients (bounded per-client queues) and the recent-recognitions feed."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from services.web.hub import LiveEvent, LiveHub, Sighting, Subscription, TooManyClientsError

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def event(n: int) -> LiveEvent:
    return LiveEvent("attendance", {"n": n})


def numbers(events: list[LiveEvent]) -> list[int]:
    return [e.data["n"] for e in events if e.name == "attendance"]


def subscribed(hub: LiveHub) -> Subscription:
    subscription = hub.subscribe()
    first = subscription.get(0)
    assert [e.name for e in first] == ["broker"]  # every client first learns the broker's status
    return subscription


def sighting(camera: str, student: int | None, at: datetime) -> Sighting:
    name = "unknown" if student is None else f"student {student}"
    return Sighting(camera, student, name, at, at.strftime("%H:%M:%S"), 0.4)


def test_every_client_gets_every_event_in_order() -> None:
    hub = LiveHub()
    a, b = subscribed(hub), subscribed(hub)
    for n in range(3):
        hub.publish(event(n))
    assert numbers(a.get(0)) == [0, 1, 2]
    assert numbers(b.get(0)) == [0, 1, 2]


def test_a_slow_client_drops_its_oldest_and_is_told_to_resync() -> None:
    hub = LiveHub(client_queue_size=10)
    slow, fast = subscribed(hub), subscribed(hub)
    for n in range(25):
        hub.publish(event(n))
        assert numbers(fast.get(0)) == [n]  # the fast client never waits for the slow one
    events = slow.get(0)
    assert events[0].name == "resync"
    assert "15 event(s) dropped" in events[0].data["reason"]
    assert numbers(events) == list(range(15, 25))
    hub.publish(event(99))
    assert [e.name for e in slow.get(0)] == ["attendance"]  # resync only once per loss


def test_publish_never_blocks_on_a_client_that_reads_nothing() -> None:
    hub = LiveHub(client_queue_size=10, max_clients=100)
    for _ in range(50):
        hub.subscribe()
    started = time.monotonic()
    for n in range(2000):
        hub.publish(event(n))
    assert time.monotonic() - started < 2.0


def test_get_waits_for_an_event_and_close_wakes_it() -> None:
    subscription = Subscription(5)
    assert subscription.get(0.01) == []
    threading.Timer(0.05, subscription.put, [event(1)]).start()
    assert numbers(subscription.get(5)) == [1]
    threading.Timer(0.05, subscription.close).start()
    started = time.monotonic()
    assert subscription.get(5) == []
    assert time.monotonic() - started < 2
    assert subscription.closed


def test_clients_are_capped_and_unsubscribe_frees_a_place() -> None:
    hub = LiveHub(max_clients=2)
    first = hub.subscribe()
    hub.subscribe()
    with pytest.raises(TooManyClientsError):
        hub.subscribe()
    hub.unsubscribe(first)
    assert hub.client_count == 1
    hub.subscribe()


def test_close_ends_every_stream_and_later_ones_at_once() -> None:
    hub = LiveHub()
    before = hub.subscribe()
    hub.close()
    assert before.closed
    assert hub.subscribe().closed


def test_reconnecting_to_the_broker_tells_clients_to_resync() -> None:
    hub = LiveHub()
    client = subscribed(hub)
    hub.set_broker(True, "live")
    assert [e.name for e in client.get(0)] == ["broker", "resync"]
    hub.set_broker(True, "live")  # still connected: nothing was missed
    assert [e.name for e in client.get(0)] == ["broker"]
    hub.set_broker(False, "lost")
    lost = client.get(0)
    assert [(e.name, e.data["connected"]) for e in lost] == [("broker", False)]
    assert hub.subscribe().get(0)[0].data == {"connected": False, "detail": "lost"}


def test_repeated_sightings_update_one_feed_line() -> None:
    hub = LiveHub()
    first = hub.record(sighting("cam1", 7, T0))
    again = hub.record(sighting("cam1", 7, T0 + timedelta(seconds=3)))
    assert again.data["entry_id"] == first.data["entry_id"]
    assert again.data["count"] == 2
    assert again.data["time"] == "08:00:03"
    assert len(hub.recent("cam1")) == 1


def test_feed_is_newest_first_per_camera_and_bounded() -> None:
    hub = LiveHub(feed_size=3)
    hub.record(sighting("cam1", 1, T0))
    hub.record(sighting("cam2", 1, T0))  # another camera: its own line and its own feed
    hub.record(sighting("cam1", None, T0))
    hub.record(sighting("cam1", 1, T0 + timedelta(seconds=1)))  # moves back to the top
    assert [(e["name"], e["count"]) for e in hub.recent("cam1")] == [("student 1", 2), ("unknown", 1)]
    assert [e["known"] for e in hub.recent("cam1")] == [True, False]
    for n in range(2, 10):
        hub.record(sighting("cam1", n, T0))
    assert [e["student_id"] for e in hub.recent("cam1")] == [9, 8, 7]
    assert len(hub.recent("cam2")) == 1
    assert hub.recent("nowhere") == []


def test_a_sighting_after_the_window_starts_a_new_line() -> None:
    hub = LiveHub()
    first = hub.record(sighting("cam1", 7, T0))
    later = hub.record(sighting("cam1", 7, T0 + timedelta(seconds=30)))
    assert later.data["entry_id"] != first.data["entry_id"]


def test_sightings_are_fanned_out_to_clients() -> None:
    hub = LiveHub()
    client = subscribed(hub)
    hub.record(sighting("cam1", 7, T0))
    (received,) = client.get(0)
    assert received.name == "recognition"
    assert received.data["name"] == "student 7"
    assert received.data["camera_id"] == "cam1"
