"""The live stream and snapshot carry only the sessions the signed-in person may see, as the API
lists them for their token; the consumer still receives every camera's events."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.web import sse
from services.web.hub import LiveEvent, LiveHub, Sighting, Visible
from tests.unit.web.fakes import OTHER_SESSION, SESSION, FakeApi, make_app, signed_in_client

DURING = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # inside both sessions (07:00-08:00 UTC)
BEFORE = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # the class before, on the same camera
CURRENT = {"admin": [SESSION, OTHER_SESSION], "viewer": [SESSION, OTHER_SESSION], "teacher": [SESSION]}


def mark(session: dict[str, Any]) -> LiveEvent:
    return LiveEvent(
        "attendance", {"session_id": session["id"], "camera_id": session["camera_id"], "student_id": 1}
    )


def sighting(camera_id: str, at: datetime, name: str = "Ada") -> Sighting:
    return Sighting(
        camera_id=camera_id, student_id=1, name=name, at=at, time=at.strftime("%H:%M:%S"), distance=0.4
    )


# The filter itself


def test_marks_pass_by_session_and_sightings_by_camera_during_the_session() -> None:
    visible = Visible.from_api([SESSION])
    assert visible.allows(mark(SESSION))
    assert not visible.allows(mark(OTHER_SESSION))
    assert visible.allows(LiveEvent("recognition", {"camera_id": "cam1", "at": DURING.isoformat()}))
    assert not visible.allows(LiveEvent("recognition", {"camera_id": "cam2", "at": DURING.isoformat()}))
    assert not visible.allows(LiveEvent("recognition", {"camera_id": "cam1", "at": BEFORE.isoformat()}))
    assert not visible.allows(LiveEvent("recognition", {"camera_id": "cam1"}))  # no time: no proof
    assert visible.allows(LiveEvent("broker", {"connected": True, "detail": "live"}))
    assert visible.allows(LiveEvent("resync", {"reason": "x"}))
    assert not visible.allows(LiveEvent("something_new", {"student_name": "Ada"}))


def test_a_filtered_subscription_never_queues_what_it_may_not_see() -> None:
    hub = LiveHub(client_queue_size=10)
    everything, teacher = hub.subscribe(), hub.subscribe(Visible.from_api([SESSION]))
    for _ in range(50):  # others' events must not even push the teacher's out of the queue
        hub.publish(mark(OTHER_SESSION))
    hub.publish(mark(SESSION))
    assert [e.name for e in teacher.get(0)] == ["broker", "attendance"]
    assert len(everything.get(0)) == 11  # a resync (it dropped some), then its 10 newest


# Through the dashboard


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(current=CURRENT)


@pytest.fixture
def app(api: FakeApi) -> Flask:
    return make_app(api)


def open_stream(client: FlaskClient, path: str = "/events") -> Iterator[bytes]:
    response = client.get(path, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    chunks = iter(response.response)
    assert next(chunks) == b"retry: 2000\n\n"
    assert next(chunks).startswith(b"event: broker\n")
    return chunks


def hub_of(app: Flask) -> LiveHub:
    hub: LiveHub = app.extensions["attendance_web"].hub
    return hub


def test_a_teachers_stream_carries_only_their_sessions(app: Flask) -> None:
    teacher, admin = (
        open_stream(signed_in_client(app, "teacher")),
        open_stream(signed_in_client(app, "admin")),
    )
    hub = hub_of(app)
    hub.publish(mark(OTHER_SESSION))
    hub.record(sighting("cam2", DURING, "Someone Else"))
    hub.record(sighting("cam1", BEFORE, "Earlier Class"))
    hub.publish(mark(SESSION))
    hub.record(sighting("cam1", DURING, "Ada"))
    seen = next(teacher).decode()
    assert '"session_id":4' in seen
    assert "Ada" in seen
    assert '"session_id":5' not in seen and "Someone Else" not in seen and "Earlier Class" not in seen
    everything = next(admin).decode()
    assert '"session_id":5' in everything and "Someone Else" in everything and '"session_id":4' in everything


def test_a_stream_for_given_sessions_only_keeps_those_the_api_lets_them_read(
    app: Flask, api: FakeApi
) -> None:
    client = signed_in_client(app, "teacher")
    stream = open_stream(client, "/events?session=5&session=4")
    assert [r.url.path for r in api.requests[-2:]] == ["/sessions/4", "/sessions/5"]  # 5: 403
    hub = hub_of(app)
    hub.publish(mark(OTHER_SESSION))
    hub.publish(mark(SESSION))
    assert '"session_id":5' not in (chunk := next(stream).decode()) and '"session_id":4' in chunk


def test_the_snapshots_feed_is_only_what_the_camera_saw_during_the_session(app: Flask) -> None:
    hub = hub_of(app)
    hub.record(sighting("cam1", BEFORE, "Earlier Class"))
    hub.record(sighting("cam1", DURING, "Ada"))
    state = signed_in_client(app, "teacher").get("/sessions/4/state.json").get_json()
    assert [entry["name"] for entry in state["recent"]] == ["Ada"]


def test_a_session_not_theirs_has_no_snapshot() -> None:
    api = FakeApi(
        {
            ("GET", "/sessions/5/attendance"): lambda r, user: httpx.Response(
                403, json={"detail": "not your course"}
            )
        },
        current=CURRENT,
    )
    response = signed_in_client(make_app(api), "teacher").get("/sessions/5/state.json")
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Not allowed: not your course."}


def test_the_current_sessions_are_the_persons_own(app: Flask) -> None:
    assert signed_in_client(app, "teacher").get("/sessions/current.json").get_json() == {"session_ids": [4]}
    assert signed_in_client(app, "admin").get("/sessions/current.json").get_json() == {"session_ids": [4, 5]}


# Re-asking while the page stays open


def test_a_stream_follows_what_its_person_may_see_and_ends_when_signed_out() -> None:
    hub = LiveHub()
    subscription = hub.subscribe(Visible.from_api([SESSION]))
    # Asked before each wait here (refresh_s=0): twice the other session, then signed out.
    answers: list[Visible | None] = [Visible.from_api([OTHER_SESSION])] * 2 + [None]

    def refresh() -> Visible | None:
        return answers.pop(0)

    stream = sse.stream(hub, subscription, keepalive_s=0.01, refresh=refresh, refresh_s=0)
    assert next(stream).startswith("retry:")
    assert next(stream).startswith("event: broker")
    hub.publish(mark(SESSION))
    hub.publish(mark(OTHER_SESSION))
    assert '"session_id":5' in next(stream)  # the new set applies
    assert next(stream) == sse.format_event("signed_out", {})
    assert list(stream) == []
    assert hub.client_count == 0


def test_a_refresh_that_fails_keeps_what_was_allowed() -> None:
    hub = LiveHub()
    subscription = hub.subscribe(Visible.from_api([SESSION]))

    def refresh() -> Visible | None:
        raise ConnectionError("API away")

    stream = sse.stream(hub, subscription, keepalive_s=0.01, refresh=refresh, refresh_s=0)
    next(stream), next(stream)
    hub.publish(mark(SESSION))
    assert '"session_id":4' in next(stream)
    stream.close()


def test_the_stream_is_signed_out_when_the_api_refuses_the_token(
    app: Flask, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "REFRESH_S", 0.0)  # re-ask before every wait
    stream = open_stream(signed_in_client(app, "teacher"))
    api.revoke_all()
    rest = b"".join(stream).decode()
    assert rest.endswith(sse.format_event("signed_out", {}))
    assert hub_of(app).client_count == 0
