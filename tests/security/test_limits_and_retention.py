"""Issue 9's findings 15 (enrollment CPU) and 13 (nothing is purged), each reproduced first.

15: one enrollment request may carry at most API_MAX_PHOTOS_PER_REQUEST photos (more: a 422
before any is analysed), and spends at most API_ENROLL_TIME_BUDGET_S on them, waiting for its
turn included: later photos are refused unanalysed, the analysed ones kept. 13: the dead-letter
queue is bounded, and sightings older than RECORDER_SIGHTINGS_RETENTION_DAYS are purged in
small batches while attendance stays.
"""

import asyncio
import concurrent.futures
import io
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi import UploadFile

from harness.paths import ROOT
from harness.processes import wait_until
from services.api import photos
from services.api.photos import OUT_OF_TIME, PhotoChecker, RejectedPhoto
from services.common import topology
from services.common.messages import FaceBox, FaceRecognized
from services.common.students import create_student
from services.recorder.retention import Purger, purge_sightings
from services.recorder.store import AttendanceStore, MarkPolicy

# The API's own fixtures (a signed-in TestClient of create_app on a fresh database).
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, api_database_url, make_client  # noqa: F401
from tests.integration.api.helpers import face, new_student, upload

pytestmark = [pytest.mark.security]

DEFINITIONS = ROOT / "rabbitmq" / "definitions.json"


def blank_photo() -> bytes:
    """A grey picture: no face, so each one costs a full detection pass."""
    ok, jpeg = cv2.imencode(".jpg", np.full((480, 640, 3), 128, dtype=np.uint8))
    assert ok
    return bytes(jpeg.tobytes())


def counting_analysis(monkeypatch: pytest.MonkeyPatch, delay_s: float = 0.0) -> list[int]:
    """Count (and optionally slow down) the photos the API analyses."""
    calls: list[int] = []
    real: Callable[..., Any] = photos.analyze_photo

    def analyse(*args: Any) -> Any:
        calls.append(1)
        time.sleep(delay_s)
        return real(*args)

    monkeypatch.setattr(photos, "analyze_photo", analyse)
    return calls


def test_finding_15_too_many_photos_in_one_request_are_refused_before_any_is_analysed(
    make_client: MakeClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(BROKER_DOWN_URL)
    student = new_student(client)
    calls = counting_analysis(monkeypatch)
    blank = blank_photo()
    response = upload(client, student["id"], *[(f"{n}.jpg", blank) for n in range(11)])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "at most 10" in detail and "API_MAX_PHOTOS_PER_REQUEST" in detail, detail
    assert calls == [], "photos were analysed before the request was refused"
    # Ten is still accepted (refused one by one for having no face, but analysed).
    response = upload(client, student["id"], *[(f"{n}.jpg", blank) for n in range(10)])
    assert response.status_code == 422 and len(response.json()["rejected"]) == 10
    assert len(calls) == 10


@pytest.mark.faces
def test_finding_15_photos_past_the_time_budget_are_refused_and_the_analysed_kept(
    make_client: MakeClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(BROKER_DOWN_URL, api_enroll_time_budget_s=1.0)
    student = new_student(client)
    calls = counting_analysis(monkeypatch, delay_s=0.4)
    files = [("a.jpg", face("kit_harington", 1)), ("b.jpg", face("kit_harington", 2))]
    files += [(f"blank{n}.jpg", blank_photo()) for n in range(6)]
    started = time.monotonic()
    response = upload(client, student["id"], *files)
    elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text
    body = response.json()
    assert [p["filename"] for p in body["accepted"]] == ["a.jpg", "b.jpg"]
    reasons = {p["filename"]: p["reason"] for p in body["rejected"]}
    assert reasons["blank5.jpg"] == OUT_OF_TIME
    assert len(calls) < len(files), "every photo was analysed despite the budget"
    assert sum(r == OUT_OF_TIME for r in reasons.values()) == len(files) - len(calls)
    assert body["photo_count"] == 2
    assert elapsed < 1.0 + 0.4 + 2.0, f"the request took {elapsed:.1f} s"


def test_finding_15_waiting_for_another_requests_turn_counts_against_the_budget() -> None:
    checker = PhotoChecker(max_photo_bytes=1 << 20, min_face_px=40, encode_jitters=1)

    async def run() -> tuple[object, float]:
        await checker._slot.acquire()  # another request's photo is being analysed, for long
        started = time.monotonic()
        result = await checker.check(
            "x.jpg", UploadFile(io.BytesIO(blank_photo())), deadline=time.monotonic() + 0.3
        )
        return result, time.monotonic() - started

    # On a thread of its own: a browser test earlier in the session may own this thread's loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result, waited = pool.submit(asyncio.run, run()).result()
    assert result == RejectedPhoto("x.jpg", OUT_OF_TIME)
    assert waited < 2.0


def test_finding_13_the_dead_letter_queue_is_bounded_in_length_and_age() -> None:
    generated = {q["name"]: q["arguments"] for q in topology.definitions()["queues"]}
    on_file = {q["name"]: q["arguments"] for q in json.loads(DEFINITIONS.read_text())["queues"]}
    for arguments in (generated[topology.DEAD_IDENTITY_QUEUE], on_file[topology.DEAD_IDENTITY_QUEUE]):
        assert 0 < arguments.get("x-max-length", 0) <= 100_000, arguments
        assert 0 < arguments.get("x-message-ttl", 0) <= 31 * 24 * 3600 * 1000, arguments
        assert arguments.get("x-overflow", "drop-head") == "drop-head", "a full queue must not refuse"


def sighting(student_id: int, at: datetime) -> FaceRecognized:
    return FaceRecognized(
        camera_id="room-1",
        frame_seq=1,
        captured_at=at,
        box=FaceBox(top=1, right=100, bottom=100, left=1),
        worker="test",
        student_id=student_id,
        student_number="S",
        student_name="n",
        distance=0.42,
    )


def count(engine: sa.Engine, sql: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(sql), params).scalar_one())


@pytest.mark.integration
def test_finding_13_old_sightings_are_purged_by_themselves_and_attendance_kept(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        old_student = create_student(connection, "S1", "Ada Lovelace").id
        new_student_id = create_student(connection, "S2", "Alan Turing").id
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=40)
    # 2,500 old sightings (several purge batches), then recent ones: the order they arrive in.
    for start in range(0, 2500, 500):
        store.record(
            [sighting(old_student, long_ago + timedelta(seconds=s)) for s in range(start, start + 500)]
        )
    store.record([sighting(new_student_id, now - timedelta(minutes=m)) for m in range(10, 0, -1)])
    store.record([sighting(old_student, now - timedelta(days=29))])
    cutoff = (now - timedelta(days=30)).replace(tzinfo=None)
    attendance_before = count(engine, "SELECT COUNT(*) FROM attendance")
    marked_on_old = count(
        engine,
        "SELECT COUNT(*) FROM attendance a JOIN identity_events e ON e.event_id = a.mark_event_id "
        "WHERE e.captured_at < :c",
        c=cutoff,
    )
    assert attendance_before >= 3 and marked_on_old >= 1  # a default session a day
    assert count(engine, "SELECT COUNT(*) FROM identity_events") == 2511

    # 0 keeps everything.
    assert purge_sightings(engine, 0) == 0
    stop = threading.Event()
    thread = Purger(engine, retention_days=30, stop=stop, every_s=0.2).start()
    try:
        wait_until(
            lambda: count(engine, "SELECT COUNT(*) FROM identity_events") == 11, 30, "old sightings purged"
        )
        # It keeps running: a late old sighting goes at the next round.
        store.record([sighting(old_student, long_ago)])  # a sighting, not a new mark
        wait_until(
            lambda: count(engine, "SELECT COUNT(*) FROM identity_events") == 11, 10, "the late one purged"
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert count(engine, "SELECT COUNT(*) FROM identity_events WHERE captured_at < :c", c=cutoff) == 0
    assert count(engine, "SELECT COUNT(*) FROM attendance") == attendance_before
    # The marks made on purged sightings stay, naming their event by id (not a foreign key).
    assert (
        count(
            engine,
            "SELECT COUNT(*) FROM attendance a LEFT JOIN identity_events e ON e.event_id = a.mark_event_id "
            "WHERE e.id IS NULL",
        )
        == marked_on_old
    )


@pytest.mark.integration
def test_finding_13_an_old_sighting_stored_behind_many_newer_ones_is_purged_too(engine: sa.Engine) -> None:
    # Before migration 0007 the purge walked ids and stopped at the first batch with nothing old:
    # a sighting dated 40 days back, stored after a batch of newer ones, was kept for good.
    with engine.begin() as connection:
        student = create_student(connection, "S1", "Ada Lovelace").id
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    now = datetime.now(UTC)
    store.record([sighting(student, now - timedelta(minutes=m)) for m in range(25, 0, -1)])
    store.record([sighting(student, now - timedelta(days=40, seconds=s)) for s in range(3)])
    assert count(engine, "SELECT COUNT(*) FROM identity_events") == 28

    assert purge_sightings(engine, 30, batch=10) == 3

    assert count(engine, "SELECT COUNT(*) FROM identity_events") == 25
    assert purge_sightings(engine, 30, batch=10) == 0
