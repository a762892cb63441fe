"""Issue 9's findings about hostile input (4, 12 and parts of 16), each reproduced first.

4: a decompression bomb (a small PNG of a huge picture) must be refused from its header, before
any pixel is decoded, by the API's enrollment and by a recognizer, and the peak memory of
refusing it stays small. 16: a message with an infinite distance or an absurd timestamp is
refused where it is validated, and a burst of gallery broadcasts reloads the gallery once or
twice, not once each. 12: a password in any part of a camera URL never reaches the cameras
table (nor GET /cameras).

Each failed on the code before its fix (d1c2f6c): the bomb decoded with 2,297 MB more at the
peak (the API: "no face found" after that; 33000x33000: a 500), a 9 MB frame and a frame of
64x32 px announced as 640x360 were analysed, Infinity and year 9999 reached the dashboard (the
latter raising OverflowError), 50 broadcasts gave 49 reloads, and ?pwd= reached the table."""

import json
import math
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from harness.paths import ROOT
from services.capture.service import CaptureLoop
from services.capture.settings import CaptureSettings
from services.common.messages import (
    AttendanceMarked,
    CameraHeartbeat,
    FaceBox,
    FaceUnknown,
    FrameCaptured,
    GalleryChanged,
    identity_event_adapter,
)
from services.common.students import Consent, add_face_encoding, create_student
from services.common.transport import Delivery
from services.faces.engine import build_analyzer
from services.faces.enrollment import EnrollmentPhoto
from services.faces.matching import Gallery, Matcher
from services.recognizer.live_gallery import LiveGallery
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings
from services.recorder.store import AttendanceStore, MarkPolicy
from services.web.hub import LiveHub
from services.web.live import deliver

# The API's own fixtures (a signed-in TestClient of create_app on a fresh database).
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, api_database_url, make_client  # noqa: F401
from tests.integration.api.helpers import new_student, upload

pytestmark = [pytest.mark.security]

MB = 1024 * 1024
BOX = FaceBox(top=0, right=10, bottom=10, left=0)


# ---------------------------------------------------------------------------------------------
# Finding 4: decompression bombs


def png_bomb(width: int, height: int) -> bytes:
    """A grey PNG of widthxheight black pixels, compressed row by row (never held whole):
    20000x20000 is 400 MB of pixels in about 390 KB, as the audit's file."""
    deflate = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0, then the row's pixels
    chunks = [deflate.compress(row) for _ in range(height)]
    data = b"".join(chunks) + deflate.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_bomb(20000, 20000))
    return path


@pytest.fixture(scope="module")
def huge_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "huge.png"
    path.write_bytes(png_bomb(33000, 33000))
    return path


def jpeg_bomb(width: int, height: int) -> bytes:
    """A 64x32 JPEG whose frame header claims width x height: the decoder allocates the whole
    picture, then fills what the data does not cover with grey."""
    small = bytearray(cv2.imencode(".jpg", np.zeros((32, 64, 3), np.uint8))[1].tobytes())
    sof = small.index(b"\xff\xc0")
    small[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(small)


@pytest.fixture(scope="module")
def frame_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.jpg"
    path.write_bytes(jpeg_bomb(20000, 20000))
    return path


# Run in a fresh interpreter: the peak resident memory (VmHWM) is reset once the modules are
# imported and the file read, so what it reports is what decoding (or refusing) cost.
PEAK_SCRIPT = """
import json, sys
from datetime import UTC, datetime
data = open(sys.argv[1], "rb").read()
from services.common.messages import FrameCaptured
from services.common.transport import Delivery
from services.faces.engine import InvalidImageError, decode_image
from services.faces.enrollment import PhotoRejectedError, analyze_photo, enrollment_analyzer
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings
from services.faces.engine import build_analyzer
from services.faces.matching import Gallery, Matcher
what = sys.argv[2]
if what == "api":
    analyzer = enrollment_analyzer()
else:
    settings = RecognizerSettings()
    matcher = Matcher(Gallery.from_rows([]), 0.55, 0.05)
    worker = FrameRecognizer(build_analyzer(**settings.analyzer_options()), lambda: matcher, "w")
    meta = FrameCaptured(camera_id="cam-1", seq=1, captured_at=datetime.now(UTC), width=640, height=360)
    delivery = Delivery(body=data, routing_key="frame.cam-1", headers=meta.to_headers())

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM to the current RSS
before = hwm_kb()
outcome = "decoded"
try:
    if what == "decode":
        decode_image(data)
    elif what == "api":
        analyze_photo(data, analyzer)
    else:
        [handled] = worker.handle([delivery])
        outcome = handled.rejected or "accepted"
except (InvalidImageError, PhotoRejectedError) as error:
    outcome = str(error)
except Exception as error:  # noqa: BLE001 - reported to the test
    outcome = f"{type(error).__name__}: {error}"
print(json.dumps({"grew_mb": (hwm_kb() - before) / 1024, "outcome": outcome}))
"""


def peak_of(path: Path, what: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path), what],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


@pytest.mark.parametrize("what", ["decode", "api", "recognizer"])
def test_finding_4_a_decompression_bomb_is_refused_from_its_header(bomb: Path, what: str) -> None:
    # Before the fix: decode_image decoded all 400 M pixels, 2.3 GB more at the peak.
    outcome = peak_of(bomb, what)
    assert "image too large: 20000x20000 px" in outcome["outcome"], outcome
    assert outcome["grew_mb"] < 32, f"refusing the bomb cost {outcome['grew_mb']:.0f} MB"


def test_finding_4_a_jpeg_frame_claiming_a_huge_size_is_refused_from_its_header(frame_bomb: Path) -> None:
    # Capture sends JPEG: the same bomb as a JPEG header (before the fix: 1.2 GB more at the peak).
    outcome = peak_of(frame_bomb, "recognizer")
    assert "image too large: 20000x20000 px" in outcome["outcome"], outcome
    assert outcome["grew_mb"] < 32, f"refusing the bomb cost {outcome['grew_mb']:.0f} MB"


def test_finding_4_the_api_answers_a_bomb_with_its_reason_not_a_500(
    make_client: MakeClient,  # noqa: F811
    bomb: Path,
    huge_bomb: Path,
) -> None:
    client = make_client(BROKER_DOWN_URL, raise_server_exceptions=False)
    student = new_student(client)
    for path, size in ((huge_bomb, "33000x33000"), (bomb, "20000x20000")):
        response = upload(client, student["id"], (path.name, path.read_bytes()))
        assert response.status_code == 422, response.text
        [rejected] = response.json()["rejected"]
        assert f"image too large: {size} px" in rejected["reason"], rejected


def jpeg(width: int, height: int) -> bytes:
    return cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))[1].tobytes()


def worker() -> FrameRecognizer:
    """A recognizer built as the service builds it, from the default settings."""
    settings = RecognizerSettings()
    matcher = Matcher(Gallery.from_rows([]), 0.55, 0.05)
    return FrameRecognizer(build_analyzer(**settings.analyzer_options()), lambda: matcher, "w")


def frame(body: bytes, width: int, height: int) -> Delivery:
    meta = FrameCaptured(camera_id="cam-1", seq=1, captured_at=datetime.now(UTC), width=width, height=height)
    return Delivery(body=body, routing_key="frame.cam-1", headers=meta.to_headers())


def test_finding_4_a_recognizer_refuses_oversized_and_mislabelled_frames() -> None:
    recognizer = worker()
    padded = jpeg(64, 32) + bytes(9 * MB)  # a valid JPEG: decoders ignore what follows its end
    mislabelled = frame(jpeg(64, 32), 640, 360)
    good = frame(jpeg(64, 32), 64, 32)
    results = recognizer.handle([frame(padded, 64, 32), mislabelled, good])
    assert [r.rejected for r in results[:2]] == [
        "bad frame: image too large: 9.0 MB, limit 8.0 MB",
        "bad frame: the frame is 64x32 px, its header says 640x360",
    ]
    assert results[2].rejected is None
    assert recognizer.stats.rejected_frames == 2


# ---------------------------------------------------------------------------------------------
# Finding 16: non-finite distances, absurd timestamps, gallery broadcast storms


def unknown_body(**fields: Any) -> bytes:
    event = {
        "schema_version": 1,
        "kind": "face.unknown",
        "event_id": str(uuid.uuid4()),
        "camera_id": "cam-1",
        "frame_seq": 1,
        "captured_at": datetime.now(UTC).isoformat(),
        "box": BOX.model_dump(),
        "worker": "w",
        **fields,
    }
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"best_distance": math.inf},  # json.dumps writes Infinity
        {"best_distance": math.nan},
        {"best_distance": 1e999},  # written as Infinity too; "1e999" in JSON is inf
        {"captured_at": "9999-12-31T23:59:59+00:00"},
        {"captured_at": "1970-01-01T00:00:00+00:00"},
        {"recognized_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
    ],
    ids=["infinity", "nan", "1e999", "year-9999", "1970", "two-days-ahead"],
)
def test_finding_16_the_dashboard_refuses_a_hostile_sighting(fields: dict[str, Any]) -> None:
    # Before the fix: Infinity reached the live page's state.json (invalid JSON), and year 9999
    # raised OverflowError in the live consumer's thread.
    hub = LiveHub()
    assert deliver(hub, "face.unknown.cam-1", unknown_body(**fields), ZoneInfo("Pacific/Kiritimati")) is False
    assert hub.recent("cam-1") == []
    with pytest.raises(ValidationError):
        identity_event_adapter.validate_json(unknown_body(**fields))


def test_finding_16_infinite_distance_in_json_text_is_refused() -> None:
    body = unknown_body().replace(b'"worker": "w"', b'"worker": "w", "best_distance": 1e999')
    with pytest.raises(ValidationError):
        identity_event_adapter.validate_json(body)


def test_finding_16_every_timestamped_message_refuses_absurd_times() -> None:
    far = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(ValidationError):
        CameraHeartbeat(
            camera_id="c", camera_name="c", source="0", sent_at=far, frames_published=0, status="streaming"
        )
    with pytest.raises(ValidationError):
        GalleryChanged(reason="x", changed_at=far)
    with pytest.raises(ValidationError):
        FrameCaptured(camera_id="c", seq=0, captured_at=datetime(1999, 12, 31, tzinfo=UTC), width=1, height=1)
    with pytest.raises(ValidationError):
        AttendanceMarked(
            attendance_id=1, session_id=1, session_name="s", camera_id="c", student_id=1,
            student_number="1", student_name="n", status="present", first_seen_at=far,
            distance=0.4, event_id=uuid.uuid4(), marked_at=datetime.now(UTC),
        )  # fmt: skip
    # An hour ahead (a camera's clock a little off) is still fine.
    FaceUnknown.model_validate_json(
        unknown_body(captured_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    )


@pytest.mark.integration
def test_finding_16_a_burst_of_gallery_broadcasts_reloads_at_most_twice(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix: 50 broadcasts 20 ms apart gave one full reload each (up to 50).
    gallery = LiveGallery(engine, 0.55, 0.05)
    reloads: list[float] = []
    reload_now = gallery.reload_now

    def counted() -> None:
        reloads.append(time.monotonic())
        reload_now()

    monkeypatch.setattr(gallery, "reload_now", counted)
    stop = threading.Event()
    gallery.start(stop)
    try:
        for _ in range(49):
            gallery.request_reload()
            time.sleep(0.02)
        # The last broadcast announces a real change: it must be honoured, however late it comes.
        with engine.begin() as connection:
            student = create_student(connection, "S1", "Ada", Consent("test"))
            photo = EnrollmentPhoto(b"jpeg", "0" * 64, BOX, np.full(128, 0.1))
            add_face_encoding(connection, student.id, photo)
        last = time.monotonic()
        gallery.request_reload()
        deadline = time.monotonic() + 20
        while len(gallery.matcher.gallery) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert len(gallery.matcher.gallery) == 1, "the last broadcast was not honoured"
    assert 1 <= len(reloads) <= 2, f"{len(reloads)} reloads for 50 broadcasts"
    assert reloads[-1] >= last


# ---------------------------------------------------------------------------------------------
# Finding 12: camera passwords


SECRET_URLS = [
    "rtsp://admin:hunter2@cam.local/stream?pwd=s3cret&channel=1",
    "http://cam.local/videostream.cgi?user=admin&PASSWORD=s3cret",
    "http://cam.local/snapshot.jpg?Passwd=s3cret&res=hd",
    "rtsp://cam.local/live?pass=s3cret",
    "https://cam.example/hls/index.m3u8?token=s3cret",
    "https://cam.example/mjpeg?api_key=s3cret;auth=s3cret",
]


class Heartbeats:
    """The capture loop's sink, keeping what it publishes."""

    def __init__(self) -> None:
        self.heartbeats: list[CameraHeartbeat] = []

    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        raise AssertionError("no frame expected")

    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None:
        self.heartbeats.append(heartbeat)

    def backlog(self) -> tuple[int, int]:
        return (0, 1)

    def sleep(self, seconds: float) -> None:
        pass


@pytest.mark.integration
def test_finding_12_a_camera_password_never_reaches_the_cameras_table_or_the_api(
    make_client: MakeClient,  # noqa: F811
) -> None:
    client = make_client(BROKER_DOWN_URL)
    engine: sa.Engine = client.app.state.context.engine  # type: ignore[attr-defined]
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    for number, url in enumerate(SECRET_URLS):
        settings = CaptureSettings(camera_id=f"cam-{number}", capture_source=url)
        sink = Heartbeats()
        stop = threading.Event()
        stop.set()  # the loop only sends its final heartbeat
        CaptureLoop(settings, lambda: None, sink, stop).run()  # type: ignore[arg-type, return-value]
        [heartbeat] = sink.heartbeats
        store.record_heartbeat(heartbeat)
    with engine.connect() as connection:
        stored = list(connection.execute(sa.text("SELECT id, source FROM cameras ORDER BY id")))
    assert len(stored) == len(SECRET_URLS)
    leaked = [source for _id, source in stored if "s3cret" in source or "hunter2" in source]
    assert leaked == []
    assert all("cam." in source for _id, source in stored), "the URL stays readable"
    response = client.get("/cameras")
    assert response.status_code == 200
    assert "s3cret" not in response.text and "hunter2" not in response.text
