"""Camera previews for the live page: a small JPEG of a frame with its faces' boxes and names.

The worker has the decoded frame and every face's track in hand, so drawing them costs a
resize and a JPEG of a few kilobytes: no second decode anywhere. At most `fps` previews per
camera per second of wall-clock time (a file processed at fast pace must not flood the
dashboard), none with `fps` 0. They go to the transient preview exchange for the dashboard
only (services.common.topology, "Camera previews"); they show faces, so they are biometric
data: never stored, never logged.

Pillow draws the names, with DejaVu Sans where the system has it (every accent and most
scripts); else with Pillow's built-in font, which has ASCII only, so names are shown without
their accents there ("Zoë" as "Zoe"). The live page's roster always has the names in full.
"""

import io
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from services.common.messages import FaceBox, FrameCaptured, FramePreviewed

Look = Literal["named", "check", "unknown"]

# Box colours (RGB): a name, a name on thin evidence, nobody (yet).
COLOURS: dict[Look, tuple[int, int, int]] = {
    "named": (46, 160, 67),
    "check": (230, 160, 0),
    "unknown": (214, 40, 40),
}
UNKNOWN_LABEL = "unknown"
FONT_SIZE = 14
JPEG_QUALITY = 70


@dataclass(frozen=True)
class PreviewFace:
    """A face as the preview shows it: its box in frame pixels and what its track says."""

    box: FaceBox
    name: str | None  # None: the track names nobody (yet)
    check: bool = False  # named on thin evidence (the decision's "check" tier)

    @property
    def look(self) -> Look:
        if self.name is None:
            return "unknown"
        return "check" if self.check else "named"

    @property
    def label(self) -> str:
        if self.name is None:
            return UNKNOWN_LABEL
        return f"{self.name} ?" if self.check else self.name


SYSTEM_FONT = "DejaVuSans.ttf"  # Pillow looks for it in the system's font folders


@cache
def _font() -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, bool]:
    """The font labels are drawn in, and whether it has more than ASCII."""
    try:
        return ImageFont.truetype(SYSTEM_FONT, FONT_SIZE), True
    except OSError:
        return ImageFont.load_default(size=FONT_SIZE), False


def ascii_label(text: str) -> str:
    """`text` in ASCII for a font that has nothing else: accents dropped, other letters "?"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return plain.encode("ascii", "replace").decode("ascii")


def draw_preview(rgb: np.ndarray, faces: Sequence[PreviewFace], width: int) -> tuple[bytes, int, int]:
    """The frame at most `width` px wide (never enlarged), boxes and labels drawn: (JPEG, w, h)."""
    height, frame_width = rgb.shape[:2]
    scale = min(1.0, width / frame_width)
    size = (max(1, round(frame_width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(rgb)
    if scale < 1.0:
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    draw = ImageDraw.Draw(image)
    font, full = _font()
    for face in faces:
        colour = COLOURS[face.look]
        label = face.label if full else ascii_label(face.label)
        box = [round(v * scale) for v in (face.box.left, face.box.top, face.box.right, face.box.bottom)]
        draw.rectangle(box, outline=colour, width=2)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        text_w, text_h = right - left, bottom - top
        # Above the box, or inside its top edge when the box touches the top of the frame.
        y = box[1] - text_h - 6 if box[1] >= text_h + 6 else box[1] + 2
        x = min(max(box[0], 0), max(size[0] - text_w - 6, 0))
        draw.rectangle([x, y, x + text_w + 6, y + text_h + 4], fill=colour)
        draw.text((x + 3 - left, y + 2 - top), label, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), size[0], size[1]


class PreviewMaker:
    """Decides when a camera is due a preview (at most `fps` a second) and makes it.

    One worker thread calls it (the recognizer handles one frame at a time)."""

    def __init__(self, fps: float, width: int = 480, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = 1.0 / fps if fps > 0 else None
        self.width = width
        self.clock = clock
        self._last: dict[str, float] = {}

    def due(self, camera_id: str) -> bool:
        """True (and the camera's turn taken) if this camera may have a preview now."""
        if self.interval_s is None:
            return False
        now = self.clock()
        last = self._last.get(camera_id)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[camera_id] = now
        return True

    def make(
        self, frame: FrameCaptured, rgb: np.ndarray, faces: Sequence[PreviewFace], worker: str
    ) -> FramePreviewed:
        jpeg, width, height = draw_preview(rgb, faces, self.width)
        return FramePreviewed(
            camera_id=frame.camera_id,
            frame_seq=frame.seq,
            captured_at=frame.captured_at,
            worker=worker,
            faces=len(faces),
            width=width,
            height=height,
            jpeg=jpeg,
        )
