"""The import jobs' background work: checking the ZIP's photos, then applying the rows.

A job runs as a task on the API's event loop, so requests return at once and clients poll
the job's progress. Photos go through `PhotoChecker.check_bytes`: the CPU-heavy analysis
runs on a worker thread, in the same one-at-a-time slot as every enrollment upload (an
import's photos take turns with people's uploads instead of starving them). Database work
runs on the thread pool, a small batch at a time, each row in its own transaction with its
audit entries, and the progress is written as it goes, so a job that dies (the API stopped)
is left with every finished row recorded; applying it again continues with the rest.
"""

import asyncio
import logging
import zipfile
from collections.abc import Coroutine
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from services.api.accounts import audit
from services.api.accounts.tokens import Principal
from services.api.gallery_broadcast import GalleryAnnouncer
from services.api.imports import store
from services.api.imports.archive import ArchiveError, MemberTooLargeError, read_member
from services.api.limits import too_large_sentence
from services.api.photos import AcceptedPhoto, PhotoChecker, store_photos
from services.common.db import TRANSIENT_DB_ERRORS
from services.common.students import ConsentMissingError

logger = logging.getLogger(__name__)

# Rows applied per trip to the thread pool (each in its own transaction).
APPLY_BATCH = 25


class ImportRunner:
    def __init__(self, engine: Engine, photos: PhotoChecker, gallery: GalleryAnnouncer) -> None:
        self.engine = engine
        self.photos = photos
        self.gallery = gallery
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def running(self, job_id: int) -> bool:
        task = self._tasks.get(job_id)
        return task is not None and not task.done()

    def check(self, job_id: int, archive: IO[bytes]) -> None:
        """Check the job's pending photos from this ZIP (closed when done)."""
        self._start(job_id, self._check(job_id, archive))

    def apply(self, job_id: int, principal: Principal) -> None:
        self._start(job_id, self._apply(job_id, principal))

    def _start(self, job_id: int, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"roster import {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(job_id, None))

    async def close(self) -> None:
        """Stop every job (the API stops): each is recorded as interrupted."""
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for job_id in tasks:
            await run_in_threadpool(self._set_state, job_id, "failed", store.INTERRUPTED)

    def _set_state(self, job_id: int, state: str, error: str = "") -> None:
        with self.engine.begin() as connection:
            store.set_state(connection, job_id, state, error, finished=state != "ready")

    async def _guarded(self, job_id: int, what: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except TRANSIENT_DB_ERRORS as error:
            logger.warning("roster import %d: %s stopped, database unavailable: %s", job_id, what, error)
            await self._fail(job_id, f"{what} stopped: the database was unavailable; try again")
        except Exception:
            logger.exception("roster import %d: %s failed", job_id, what)
            await self._fail(job_id, f"{what} failed; the error is in the API's log")

    async def _fail(self, job_id: int, error: str) -> None:
        try:
            await run_in_threadpool(self._set_state, job_id, "failed", error)
        except TRANSIENT_DB_ERRORS:  # it will be found silent, and marked, later
            logger.warning("roster import %d: could not record its failure", job_id)

    async def _check(self, job_id: int, file: IO[bytes]) -> None:
        try:
            await self._guarded(job_id, "the photo check", self._check_photos(job_id, file))
        finally:
            file.close()

    async def _check_photos(self, job_id: int, file: IO[bytes]) -> None:
        with zipfile.ZipFile(file) as archive:
            pending = await run_in_threadpool(self._pending, job_id)
            for line, member in pending:
                photo, reason = None, ""
                try:
                    data = await run_in_threadpool(read_member, archive, member, self.photos.max_photo_bytes)
                    result = await self.photos.check_bytes(member, data)
                    if isinstance(result, AcceptedPhoto):
                        photo = result.photo
                    else:
                        reason = result.reason
                except MemberTooLargeError as error:
                    reason = too_large_sentence(int(error.args[0]), self.photos.max_photo_bytes, "photo")
                except ArchiveError as error:
                    reason = str(error)
                await run_in_threadpool(self._save_photo, job_id, line, photo, f"photo {member}: {reason}")
        await run_in_threadpool(self._set_state, job_id, "ready")
        logger.info("roster import %d: %d photo(s) checked, preview ready", job_id, len(pending))

    def _pending(self, job_id: int) -> list[tuple[int, str]]:
        with self.engine.connect() as connection:
            return store.pending_photos(connection, job_id)

    def _save_photo(self, job_id: int, line: int, photo: Any, reason: str) -> None:
        with self.engine.begin() as connection:
            store.save_photo(connection, job_id, line, photo, reason)

    async def _apply(self, job_id: int, principal: Principal) -> None:
        await self._guarded(job_id, "the import", self._apply_rows(job_id, principal))

    async def _apply_rows(self, job_id: int, principal: Principal) -> None:
        enrolled = 0
        while True:
            done, photos = await run_in_threadpool(self._apply_batch, job_id, principal)
            enrolled += photos
            if not done:
                break
        await run_in_threadpool(self._finish_apply, job_id, principal)
        if enrolled:
            reason = f"{enrolled} photo(s) enrolled by roster import {job_id}"
            await run_in_threadpool(self.gallery.announce, reason, None)
        logger.info("roster import %d applied (%d photo(s) enrolled)", job_id, enrolled)

    def _apply_batch(self, job_id: int, principal: Principal) -> tuple[int, int]:
        """Apply the next rows; (rows done, photos stored)."""
        with self.engine.connect() as connection:
            rows = store.rows_to_apply(connection, job_id, APPLY_BATCH)
        stored = 0
        for row in rows:
            refusal = ""
            try:
                with self.engine.begin() as connection:
                    student_id, outcome, with_photo = store.apply_row(connection, job_id, row, principal)
                    photo = store.staged_photo(row) if with_photo else None
                    if photo is not None:
                        stored += store_photos(connection, principal, student_id, [photo])
                    store.record_outcome(connection, job_id, int(row.line), outcome, student_id=student_id)
            except store.RowRefusedError as error:
                refusal = str(error)
            except ConsentMissingError:  # withdrawn between the preview and now
                refusal = (
                    f"consent to biometric processing for {row.student_number} was withdrawn after the "
                    "preview: its photo is not enrolled, import the file again"
                )
            except IntegrityError:  # another request took the number between our check and insert
                refusal = f"student number {row.student_number} was taken meanwhile: import the file again"
            if refusal:
                with self.engine.begin() as connection:
                    store.record_outcome(connection, job_id, int(row.line), "refused", refusal)
        return len(rows), stored

    def _finish_apply(self, job_id: int, principal: Principal) -> None:
        with self.engine.begin() as connection:
            store.erase_staged_photos(connection, job_id)
            store.set_state(connection, job_id, "applied", finished=True)
            job = store.get_job(connection, job_id)
            assert job is not None
            counts = ", ".join(f"{n} {outcome}" for outcome, n in job.outcomes.items())
            audit.record(connection, principal, "import.applied", "roster_import", job_id, detail=counts)
