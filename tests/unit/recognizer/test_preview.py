"""Camera previews: drawn on the worker's decoded frame, downscaled, at most `fps` per camera."""

import io

import cv2
import numpy as np
from PIL import Image

from services.common import topology
from services.common.messages import FaceBox, FramePreviewed
from services.faces.decision import DecisionRule
from services.faces.engine import FaceAnalyzer
from services.faces.matching import Gallery, Matcher
from services.recognizer.preview import COLOURS, PreviewFace, PreviewMaker, ascii_label, draw_preview
from services.recognizer.service import FrameRecognizer
from services.recognizer.tracking import FaceTracker
from tests.unit.recognizer.test_service import ADA, ADA_ENCODING, FirstIsAda, TwoFaces, frame_delivery


def decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def near(pixel: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(pixel.astype(int) - colour).max() < 60)  # JPEG shifts colours a little


def test_boxes_are_drawn_scaled_to_the_preview_in_the_colour_of_what_the_track_says() -> None:
    rgb = np.full((720, 1280, 3), 128, np.uint8)
    faces = [
        PreviewFace(FaceBox(top=200, right=400, bottom=400, left=200), "Zoë Ñandú"),
        PreviewFace(FaceBox(top=200, right=1000, bottom=400, left=800), None),
        PreviewFace(FaceBox(top=0, right=1200, bottom=100, left=1100), "Ada", check=True),
    ]
    jpeg, width, height = draw_preview(rgb, faces, 480)
    assert (width, height) == (480, 270)
    image = decoded(jpeg)
    assert image.shape == (270, 480, 3)
    scale = 480 / 1280
    # The left edge of each box, halfway down it, scaled.
    for face in faces:
        x, y = round(face.box.left * scale), round((face.box.top + face.box.bottom) / 2 * scale)
        assert near(image[y, x], COLOURS[face.look]), (face.label, image[y, x])
    assert near(image[135, 240], (128, 128, 128))  # the frame itself elsewhere
    assert faces[1].label == "unknown" and faces[2].label == "Ada ?"


def test_a_small_frame_is_never_enlarged() -> None:
    _jpeg, width, height = draw_preview(np.zeros((120, 160, 3), np.uint8), [], 480)
    assert (width, height) == (160, 120)


def test_at_most_fps_previews_per_camera_and_none_at_zero() -> None:
    now = [100.0]
    maker = PreviewMaker(2.0, clock=lambda: now[0])
    assert maker.due("cam-1") and not maker.due("cam-1")
    assert maker.due("cam-2")  # each camera has its own turn
    now[0] += 0.49
    assert not maker.due("cam-1")
    now[0] += 0.02
    assert maker.due("cam-1")
    assert not PreviewMaker(0).due("cam-1")


def test_the_worker_publishes_its_preview_transient_to_the_preview_exchange() -> None:
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    worker = FrameRecognizer(
        FaceAnalyzer(TwoFaces(), FirstIsAda()),
        lambda: matcher,
        "worker-1",
        FaceTracker(rule=DecisionRule(agree=1, window=1)),
        preview=PreviewMaker(2.0),
    )
    body = cv2.imencode(".jpg", np.zeros((32, 64, 3), np.uint8))[1].tobytes()
    [first] = worker.handle([frame_delivery(body)])
    [preview] = [o for o in first.publish if o.exchange == topology.PREVIEW_EXCHANGE]
    assert preview.routing_key == "preview.cam-1" and not preview.persistent
    message = preview.message
    assert isinstance(message, FramePreviewed)
    assert (message.camera_id, message.frame_seq, message.faces, message.width) == ("cam-1", 5, 2, 64)
    assert decoded(message.jpeg).shape == (32, 64, 3)
    # Its bytes cross the broker as base64 and come back the same.
    assert FramePreviewed.model_validate_json(message.model_dump_json()) == message
    assert "jpeg" not in repr(message)  # never in a log line
    # The next frame, a moment later: no second preview yet.
    [second] = worker.handle([frame_delivery(body)])
    assert not [o for o in second.publish if o.exchange == topology.PREVIEW_EXCHANGE]


def test_without_a_system_font_names_lose_their_accents_not_their_letters() -> None:
    assert ascii_label("Zoë Ñandú") == "Zoe Nandu"
    assert ascii_label("李") == "?"
