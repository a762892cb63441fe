"""Issue 9's findings 15 (enrollment CPU) and 13 (nothing is purged), each reproduced first.

15: one enrollment request may carry at most API_MAX_PHOTOS_PER_REQUEST photos (more: a 422
before any is analysed), and spends at most API_ENROLL_TIME_BUDGET_S on them, waiting for its
turn included: later photos are refused unanalysed, the analysed ones kept. 13: the dead-letter
queue is bounded, and sightings older than RECORDER_SIGHTINGS_RETENTION_DAYS are purged in
small batches while attendance stays.
"""

import asyncio
import io
import json
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import UploadFile

from harness.paths import ROOT
from services.api import photos
from services.api.photos import OUT_OF_TIME, PhotoChecker, RejectedPhoto
from services.common import topology

# The API's own fixtures (a signed-in TestClient of create_app on a fresh database).
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, make_client  # noqa: F401
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

    result, waited = asyncio.run(run())
    assert result == RejectedPhoto("x.jpg", OUT_OF_TIME)
    assert waited < 2.0


def test_finding_13_the_dead_letter_queue_is_bounded_in_length_and_age() -> None:
    generated = {q["name"]: q["arguments"] for q in topology.definitions()["queues"]}
    on_file = {q["name"]: q["arguments"] for q in json.loads(DEFINITIONS.read_text())["queues"]}
    for arguments in (generated[topology.DEAD_IDENTITY_QUEUE], on_file[topology.DEAD_IDENTITY_QUEUE]):
        assert 0 < arguments.get("x-max-length", 0) <= 100_000, arguments
        assert 0 < arguments.get("x-message-ttl", 0) <= 31 * 24 * 3600 * 1000, arguments
        assert arguments.get("x-overflow", "drop-head") == "drop-head", "a full queue must not refuse"
