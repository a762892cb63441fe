"""Checking uploaded enrollment photos with the workers' own detector and encoder.

Analysis is CPU-bound (dlib): it runs on a worker thread, never on the event loop, and a
semaphore lets one photo be analysed at a time, so a burst of uploads queues instead of
starving the recognizers that share the machine. Waiting for that turn is asynchronous, so
queued uploads hold no thread and the rest of the API keeps answering.

A request has a time budget (API_ENROLL_TIME_BUDGET_S): `check` is given its deadline, and a
photo whose turn has not come by then is refused with OUT_OF_TIME instead of being analysed,
so one large request cannot hold everyone else's enrollments for minutes. (A photo already
being analysed at the deadline finishes: dlib cannot be interrupted, and it is under a second.)
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from fastapi import UploadFile
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from services.api.accounts import audit
from services.api.accounts.tokens import Principal
from services.api.limits import too_large_sentence
from services.common.students import add_face_encoding
from services.faces.enrollment import (
    EnrollmentPhoto,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)

logger = logging.getLogger(__name__)

OUT_OF_TIME = "not analysed: the request's time budget ran out"


@dataclass(frozen=True)
class AcceptedPhoto:
    filename: str
    photo: EnrollmentPhoto


@dataclass(frozen=True)
class RejectedPhoto:
    filename: str
    reason: str


class PhotoChecker:
    def __init__(self, max_photo_bytes: int, min_face_px: int, encode_jitters: int) -> None:
        self.max_photo_bytes = max_photo_bytes
        self.min_face_px = min_face_px
        self._analyzer = enrollment_analyzer(encode_jitters)
        # Binds to the server's event loop at first use, not here.
        self._slot = asyncio.Semaphore(1)

    async def read(self, upload: UploadFile) -> bytes:
        """The photo's bytes; raises PhotoRejectedError past the size limit without reading it all."""
        data = await upload.read(self.max_photo_bytes + 1)
        if len(data) > self.max_photo_bytes:
            size = upload.size if upload.size is not None else len(data)
            raise PhotoRejectedError(too_large_sentence(size, self.max_photo_bytes, "photo"))
        return data

    async def check(
        self, filename: str, upload: UploadFile, deadline: float | None = None
    ) -> AcceptedPhoto | RejectedPhoto:
        """Analyse one photo; `deadline` (time.monotonic()): refused unanalysed once it has passed,
        including while waiting for the turn another request holds."""
        try:
            data = await self.read(upload)
        except PhotoRejectedError as error:
            logger.info("photo %r refused: %s", filename, error)
            return RejectedPhoto(filename, str(error))
        return await self.check_bytes(filename, data, deadline)

    async def check_bytes(
        self, filename: str, data: bytes, deadline: float | None = None
    ) -> AcceptedPhoto | RejectedPhoto:
        """Analyse a photo already read (e.g. from a roster import's ZIP), in the same one-at-a-time
        slot as uploads, so an import's photos take turns with everyone's enrollments."""
        try:
            if len(data) > self.max_photo_bytes:
                raise PhotoRejectedError(too_large_sentence(len(data), self.max_photo_bytes, "photo"))
            if not await self._take_turn(deadline):
                logger.info("photo %r refused: %s", filename, OUT_OF_TIME)
                return RejectedPhoto(filename, OUT_OF_TIME)
            try:
                photo = await run_in_threadpool(analyze_photo, data, self._analyzer, self.min_face_px)
            finally:
                self._slot.release()
        except PhotoRejectedError as error:
            logger.info("photo %r refused: %s", filename, error)
            return RejectedPhoto(filename, str(error))
        logger.info("photo %r accepted (face %d px)", filename, photo.face_px)
        return AcceptedPhoto(filename, photo)

    async def _take_turn(self, deadline: float | None) -> bool:
        """Acquire the analysis slot; False (not acquired) if the deadline passes first."""
        if deadline is None:
            await self._slot.acquire()
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(self._slot.acquire(), remaining)
        except TimeoutError:
            return False
        return True


def store_photos(
    connection: Connection, editor: Principal, student_id: int, photos: list[EnrollmentPhoto]
) -> int:
    """Store checked photos of a student whose row the caller locked, with their audit entry, in
    the caller's transaction (uploads, review crops and roster imports all come through here);
    how many were new."""
    stored = sum(add_face_encoding(connection, student_id, photo) for photo in photos)
    if stored:
        audit.record(
            connection, editor, "student.enroll", "student", student_id, detail=f"{stored} photo(s) added"
        )
    return stored
