"""Camera previews on the live page: the latest of each camera, and who may see which.

The recognizers publish a small JPEG per camera a few times a second (FramePreviewed, on the
transient preview exchange: services.common.topology, "Camera previews"); a daemon thread
keeps only the latest of each camera here, in memory. A person gets a session's preview only
if the API lets them read that session (asked with their own token, the answer kept a few
seconds: the page asks twice a second) and only a picture taken during that session (a
camera serves one class after another). Previews show faces: biometric data, so they are
never written anywhere, never logged, and sent with `Cache-Control: no-store`.
"""

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.common import topology
from services.common.amqp import BrokerRefused, Subscriber
from services.common.messages import FramePreviewed
from services.common.settings import BrokerSettings
from services.web.api_client import ApiClient, ApiRefusedError

logger = logging.getLogger(__name__)

# A preview received longer ago than this is not shown: the camera or its worker has stopped.
MAX_AGE_S = 10.0
# How long the API's answer to "may this person read this session?" is reused.
ACCESS_TTL_S = 10.0
ACCESS_CACHE_SIZE = 1000


@dataclass(frozen=True)
class Preview:
    camera_id: str
    captured_at: datetime
    jpeg: bytes
    received_at: float  # monotonic


class PreviewStore:
    """The latest preview of each camera (thread-safe: the consumer writes, requests read)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, Preview] = {}

    def put(self, preview: FramePreviewed) -> None:
        with self._lock:
            shown = self._latest.get(preview.camera_id)
            # Two workers may briefly serve one camera (a worker joined or died): keep the newer.
            if shown is not None and preview.captured_at < shown.captured_at:
                return
            self._latest[preview.camera_id] = Preview(
                preview.camera_id, preview.captured_at, preview.jpeg, self._clock()
            )

    def latest(self, camera_id: str, max_age_s: float = MAX_AGE_S) -> Preview | None:
        with self._lock:
            preview = self._latest.get(camera_id)
            if preview is not None and self._clock() - preview.received_at > max_age_s:
                del self._latest[camera_id]  # stale pictures of faces are not kept
                return None
            return preview


def deliver_preview(store: PreviewStore, routing_key: str, body: bytes) -> bool:
    """Decode one preview and keep it; False (logged, without its content) if it is not valid."""
    try:
        preview = FramePreviewed.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        logger.warning("ignoring an invalid camera preview (%s): %s at %s", routing_key, first["msg"], where)
        return False
    store.put(preview)
    return True


class PreviewConsumer:
    """Receives previews on a daemon thread (a connection of its own, so pictures never crowd
    the live events' queue) until `stop` is set."""

    def __init__(self, settings: BrokerSettings, store: PreviewStore, stop: threading.Event) -> None:
        self.store = store
        self.subscriber = Subscriber(
            settings, "web-preview", topology.LIVE_PREVIEWS, self._deliver, stop=stop
        )
        self.thread = threading.Thread(target=self.run, name="preview-consumer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            self.subscriber.run()
        except BrokerRefused:
            return  # said once in the log; the live page shows no picture

    def _deliver(self, routing_key: str, body: bytes) -> None:
        deliver_preview(self.store, routing_key, body)


class SessionAccess:
    """GET /sessions/{id} as a person sees it, answers (and 403/404 refusals) kept `ttl_s`.

    Keyed by a digest of the person's token, so the cache holds no token. A 401 (signed out)
    and an unreachable API are never kept: they are asked again at once."""

    def __init__(
        self,
        ttl_s: float = ACCESS_TTL_S,
        size: int = ACCESS_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        # (when asked, the session or the refusal's status and detail)
        self._answers: OrderedDict[tuple[str, int], tuple[float, dict[str, Any] | tuple[int, str]]] = (
            OrderedDict()
        )

    def session(self, api: ApiClient, token: str, session_id: int) -> dict[str, Any]:
        """The session, or the API's ApiRefusedError for this person."""
        key = (hashlib.sha256(token.encode()).hexdigest(), session_id)
        now = self._clock()
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and now - kept[0] < self.ttl_s:
            answer = kept[1]
        else:
            try:
                answer = api.session(session_id)
            except ApiRefusedError as error:
                if error.status not in (403, 404):
                    raise
                answer = (error.status, error.detail)
            with self._lock:
                self._answers[key] = (now, answer)
                self._answers.move_to_end(key)
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
        if isinstance(answer, tuple):
            status, detail = answer
            raise ApiRefusedError(status, detail, {"detail": detail})
        return answer
