"""Fan-out of live events to every connected browser, and the recent-recognitions feed.

Pure logic (no pika, no Flask): the RabbitMQ consumer thread calls `publish`, each
Server-Sent Events stream reads its own `Subscription`. A subscription is a bounded queue:
a slow client loses its oldest events (and is told to resync from a snapshot) but never
slows the consumer or the other clients.

The consumer receives every camera's events; each subscription lets through only what its
person may see (`Visible`: the sessions the API gave them, each with its camera and time span).
"""

import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

# A face seen again within this long updates its feed entry instead of adding a line, so
# someone standing in front of a camera for a minute is one line, not hundreds.
COALESCE_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True)
class LiveEvent:
    """One event for browsers: its SSE event name and a JSON-ready payload."""

    name: str
    data: dict[str, Any]


def resync_event(reason: str) -> LiveEvent:
    """Tells a page that it may have missed events and must re-fetch its snapshot."""
    return LiveEvent("resync", {"reason": reason})


# Events about the stream itself, for everyone: they carry no attendance data.
STREAM_EVENTS = frozenset({"broker", "resync"})


@dataclass(frozen=True)
class VisibleSession:
    id: int
    camera_id: str
    starts_at: datetime | None
    ends_at: datetime | None

    def covers(self, camera_id: str, at: datetime | None) -> bool:
        """A sighting on this session's camera during it (a camera serves one class after another)."""
        if camera_id != self.camera_id:
            return False
        if at is None:
            return False
        return (self.starts_at is None or at >= self.starts_at) and (
            self.ends_at is None or at < self.ends_at
        )


@dataclass(frozen=True)
class Visible:
    """The sessions one live client may see, as the API listed them for its signed-in person.

    An event about a session (`session_id`) passes if that session is one of them; a sighting on
    a camera (`camera_id` and `at`) if it happened on one of their cameras during one of them.
    Events about the stream itself (broker status, resync) pass; anything else does not.
    """

    sessions: tuple[VisibleSession, ...] = ()

    @classmethod
    def from_api(cls, sessions: Iterable[Mapping[str, Any]]) -> "Visible":
        return cls(
            tuple(
                VisibleSession(
                    id=int(s["id"]),
                    camera_id=str(s.get("camera_id", "")),
                    starts_at=_moment(s.get("starts_at")),
                    ends_at=_moment(s.get("ends_at")),
                )
                for s in sessions
            )
        )

    @property
    def session_ids(self) -> frozenset[int]:
        return frozenset(s.id for s in self.sessions)

    def allows(self, event: LiveEvent) -> bool:
        data = event.data
        if "session_id" in data:
            return data["session_id"] in self.session_ids
        if "camera_id" in data:
            at = _moment(data.get("at"))
            return any(s.covers(str(data["camera_id"]), at) for s in self.sessions)
        return event.name in STREAM_EVENTS

    def covers(self, camera_id: str, at: Any) -> bool:
        moment = _moment(at)
        return any(s.covers(camera_id, moment) for s in self.sessions)


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time (naive means UTC) as an aware datetime; None if absent or unreadable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class TooManyClientsError(Exception):
    """Every thread meant for live clients is taken."""


class Subscription:
    """One browser's queue of pending events: bounded, dropping the oldest when full.

    With `visible`, only the events its person may see are queued (None: every event, for
    tools and tests that watch the whole hub).
    """

    def __init__(self, max_events: int, visible: Visible | None = None) -> None:
        self._events: deque[LiveEvent] = deque(maxlen=max_events)
        self._ready = threading.Condition()
        self._dropped = 0
        self.dropped_total = 0
        self.closed = False
        self.visible = visible

    def set_visible(self, visible: Visible) -> None:
        """What the person may see changed (a session began or ended, a course changed hands)."""
        with self._ready:
            self.visible = visible

    def put(self, event: LiveEvent) -> None:
        with self._ready:
            if self.visible is not None and not self.visible.allows(event):
                return
            if len(self._events) == self._events.maxlen:
                self._dropped += 1
                self.dropped_total += 1
            self._events.append(event)
            self._ready.notify()

    def get(self, timeout_s: float) -> list[LiveEvent]:
        """The events waiting (at most `timeout_s` for one); a resync first if some were dropped."""
        with self._ready:
            if not self._events and not self.closed:
                self._ready.wait(timeout_s)
            events = list(self._events)
            self._events.clear()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            events.insert(0, resync_event(f"{dropped} event(s) dropped: this client was too slow"))
        return events

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()


@dataclass
class FeedEntry:
    """One line of the recent-recognitions feed; repeated sightings update it."""

    entry_id: int
    camera_id: str
    student_id: int | None
    name: str
    first_at: datetime
    last_at: datetime
    time: str  # last sighting, in the school's time zone, as shown
    distance: float | None
    count: int = 1

    def matches(self, camera_id: str, student_id: int | None, at: datetime) -> bool:
        return (
            self.camera_id == camera_id
            and self.student_id == student_id
            and abs(at - self.last_at) <= COALESCE_WINDOW
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "camera_id": self.camera_id,
            "student_id": self.student_id,
            "known": self.student_id is not None,
            "name": self.name,
            "time": self.time,
            "at": self.last_at.isoformat(),  # capture time of the last sighting, machine-readable
            "count": self.count,
            "distance": None if self.distance is None else round(self.distance, 3),
        }


@dataclass(frozen=True)
class Sighting:
    """A face.recognized or face.unknown event, reduced to what the feed shows."""

    camera_id: str
    student_id: int | None
    name: str
    at: datetime
    time: str
    distance: float | None


@dataclass
class BrokerStatus:
    connected: bool = False
    detail: str = "connecting to RabbitMQ"

    def as_event(self) -> LiveEvent:
        return LiveEvent("broker", {"connected": self.connected, "detail": self.detail})


@dataclass
class LiveHub:
    """Every live client's subscription, the feed per camera, and the broker's status."""

    feed_size: int = 20
    client_queue_size: int = 200
    max_clients: int = 28
    broker: BrokerStatus = field(default_factory=BrokerStatus)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[Subscription] = []
        self._feeds: dict[str, deque[FeedEntry]] = {}
        self._ids = itertools.count(1)
        self.closed = False

    # Clients

    def subscribe(self, visible: Visible | None = None) -> Subscription:
        subscription = Subscription(self.client_queue_size, visible)
        with self._lock:
            if len(self._clients) >= self.max_clients:
                raise TooManyClientsError(f"{len(self._clients)} live clients already connected")
            self._clients.append(subscription)
            # First thing a new client learns: whether live events flow at all.
            subscription.put(self.broker.as_event())
            if self.closed:
                subscription.close()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._clients:
                self._clients.remove(subscription)
        if subscription.dropped_total:
            logger.info("a live client disconnected after %d dropped event(s)", subscription.dropped_total)

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, event: LiveEvent) -> None:
        """Queue `event` for every client; never blocks on any of them."""
        with self._lock:
            clients = list(self._clients)
        for subscription in clients:
            subscription.put(event)

    def close(self) -> None:
        """Ends every stream (on shutdown), so no thread waits for a browser that stays open."""
        with self._lock:
            self.closed = True
            clients = list(self._clients)
        for subscription in clients:
            subscription.close()

    # Broker status

    def set_broker(self, connected: bool, detail: str) -> None:
        with self._lock:
            was_connected = self.broker.connected
            self.broker = BrokerStatus(connected, detail)
        self.publish(self.broker.as_event())
        if connected and not was_connected:
            # Events published while we were away never reached our (new) queue.
            self.publish(resync_event("reconnected to RabbitMQ"))

    # Recent recognitions

    def record(self, sighting: Sighting) -> LiveEvent:
        """Add a sighting to its camera's feed (or refresh a recent entry); the event to fan out."""
        with self._lock:
            feed = self._feeds.setdefault(sighting.camera_id, deque(maxlen=self.feed_size))
            entry = next(
                (e for e in feed if e.matches(sighting.camera_id, sighting.student_id, sighting.at)), None
            )
            if entry is None:
                entry = FeedEntry(
                    entry_id=next(self._ids),
                    camera_id=sighting.camera_id,
                    student_id=sighting.student_id,
                    name=sighting.name,
                    first_at=sighting.at,
                    last_at=sighting.at,
                    time=sighting.time,
                    distance=sighting.distance,
                )
            else:
                feed.remove(entry)
                entry.count += 1
                if sighting.at >= entry.last_at:
                    entry.last_at, entry.time = sighting.at, sighting.time
                    entry.distance = sighting.distance
            feed.appendleft(entry)
            event = LiveEvent("recognition", entry.as_dict())
        self.publish(event)
        return event

    def recent(self, camera_id: str) -> list[dict[str, Any]]:
        """The camera's feed, newest first."""
        with self._lock:
            return [entry.as_dict() for entry in self._feeds.get(camera_id, ())]
