"""A real recognizer, as its own broker user, publishes camera previews: a small JPEG of the
frame with the face boxed in the colour of its name, at most RECOGNIZER_PREVIEW_FPS a second."""

import io
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.messages import FrameCaptured, FramePreviewed
from services.common.students import Consent, add_face_encoding, create_student
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.recognizer.preview import COLOURS
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user

pytestmark = pytest.mark.faces

PERSON = "barack_obama"


def test_a_real_recognizer_publishes_previews_with_the_named_face_boxed(
    database_url: str, engine: sa.Engine, amqp_url: str, broker: TestBroker, faces_dir: Path
) -> None:
    photos = sorted((faces_dir / "people" / PERSON).glob("*.jpg"))
    with engine.begin() as connection:
        student = create_student(connection, "S-OBAMA", "Barack Obama", Consent("test"))
        add_face_encoding(
            connection, student.id, analyze_photo(photos[0].read_bytes(), enrollment_analyzer())
        )
    image = cv2.imread(str(photos[1]))
    image = cv2.resize(image, (960, round(image.shape[0] * 960 / image.shape[1])))
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    previews = broker.tap(topology.PREVIEW_EXCHANGE)
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")

    with service_user(amqp_url, "recognizer") as recognizer_url:
        worker = ServiceProcess(
            "services.recognizer",
            {"DATABASE_URL": database_url, "AMQP_URL": recognizer_url, "RECOGNIZER_PREVIEW_FPS": "2"},
            "preview-recognizer",
        )
        try:
            wait_until(lambda: "consuming recognizer.frames" in worker.log(), 120, "the recognizer bound")
            sent_from = time.monotonic()
            seq = 0
            # 5 frames a second for 3 seconds, as capture sends them (realtime, droppable).
            while time.monotonic() - sent_from < 3.0:
                meta = FrameCaptured(
                    camera_id="door-1", seq=seq, captured_at=datetime.now(UTC),
                    width=image.shape[1], height=image.shape[0],
                )  # fmt: skip
                broker.publish_raw(
                    topology.FRAMES_EXCHANGE, topology.frame_key("door-1"), jpeg,
                    headers=meta.to_headers(), content_type="image/jpeg",
                )  # fmt: skip
                seq += 1
                broker.connection.sleep(0.2)
            bodies = wait_until(lambda: broker.drain_raw(previews), 30, "a preview")
            time.sleep(2.0)  # the frames still being analysed
            assert isinstance(bodies, list)
            bodies += broker.drain_raw(previews)
        finally:
            worker.stop()
    assert "ACCESS_REFUSED" not in worker.log()

    shown = [FramePreviewed.model_validate_json(body) for body in bodies]
    # At most 2 a second over the ~5 s frames were analysed (the first may come at once).
    assert 1 <= len(shown) <= 2 * 5 + 1, len(shown)
    assert {p.camera_id for p in shown} == {"door-1"}
    named = [p for p in shown if p.faces == 1]
    assert named, "no preview with the face in it"
    last = named[-1]
    assert last.width == 480 and last.height == round(image.shape[0] * 480 / 960)
    picture = np.asarray(Image.open(io.BytesIO(last.jpeg)).convert("RGB")).astype(int)
    assert picture.shape == (last.height, last.width, 3)
    # The box: where the recognizer found the face, halved, in the colour of a name.
    [recognized] = [e for e in broker.drain(events) if e["kind"] == "face.recognized"][-1:]
    box = recognized["box"]
    assert recognized["student_id"] == student.id
    x, y = round(box["left"] / 2), round((box["top"] + box["bottom"]) / 4)
    edge = picture[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3)
    colour = np.array(COLOURS["named"])
    assert (np.abs(edge - colour).max(axis=1) < 60).any(), f"no box edge at {(x, y)}: {edge.tolist()}"
