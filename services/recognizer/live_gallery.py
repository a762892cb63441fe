"""The enrolled faces, loaded from MySQL, and their hot reload on a "gallery changed" broadcast."""

import logging
import math
import threading
import time

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.db import TRANSIENT_DB_ERRORS
from services.faces.matching import Gallery, Identity, Matcher

logger = logging.getLogger(__name__)

# RECOGNIZER_GALLERY_MIN_RELOAD_S's default (services.recognizer.settings).
DEFAULT_MIN_RELOAD_S = 3.0

GALLERY_QUERY = sa.text(
    "SELECT s.id, s.student_number, s.name, f.encoding FROM face_encodings f "
    "JOIN students s ON s.id = f.student_id WHERE s.deleted_at IS NULL ORDER BY s.id, f.id"
)


def load_gallery(engine: Engine) -> Gallery:
    with engine.connect() as connection:
        rows = connection.execute(GALLERY_QUERY)
        return Gallery.from_rows(
            (Identity(int(sid), number, name), np.frombuffer(blob, dtype="<f8"))
            for sid, number, name, blob in rows
        )


class LiveGallery:
    """The matcher in use, swapped atomically when a reload completes.

    Reloads run on their own thread, so frames keep being recognized with the previous
    gallery meanwhile. Bursts of change notices (a class enrolled photo by photo, or forged
    broadcasts) collapse: at most one reload starts per `min_reload_s`, and a notice that
    arrives meanwhile is honoured by the next one, so the last change is never missed.
    """

    def __init__(
        self, engine: Engine, tolerance: float, margin: float, min_reload_s: float = DEFAULT_MIN_RELOAD_S
    ) -> None:
        self._engine = engine
        self._tolerance = tolerance
        self._margin = margin
        self._min_reload_s = min_reload_s
        self._matcher = Matcher(Gallery.from_rows([]), tolerance, margin)
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reload = -math.inf  # monotonic time the last reload started

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    def reload_now(self) -> None:
        self._last_reload = time.monotonic()
        started = time.perf_counter()
        gallery = load_gallery(self._engine)
        self._matcher = Matcher(gallery, self._tolerance, self._margin)
        logger.info(
            "gallery loaded: %d encodings of %d students in %.0f ms",
            len(gallery),
            gallery.student_count,
            (time.perf_counter() - started) * 1000,
        )

    def request_reload(self) -> None:
        self._wanted.set()

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="gallery-reload", daemon=True)
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._wanted.wait(timeout=0.5):
                continue
            # Too soon after the last reload: wait out the interval; notices meanwhile join in.
            wait = self._last_reload + self._min_reload_s - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return
            self._wanted.clear()
            try:
                self.reload_now()
            except TRANSIENT_DB_ERRORS as error:
                logger.warning("gallery reload failed (%s); keeping the previous one, retrying in 5s", error)
                stop.wait(5)
                self._wanted.set()
