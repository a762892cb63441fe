"""The recorder's health: does it make progress? For `python -m services.recorder --health`,
which compose's healthcheck runs.

"The process holds a connection to the broker" is not enough: a recorder stuck in a database
call holds its connection, its messages unacknowledged, and records nothing (issue 9, finding
11). So the running recorder keeps a small JSON file up to date, `<RECORDER_CSV_PATH>.health`,
saying since when its oldest unfinished batch has been waiting (a batch that fails and is
retried stays unfinished), when its consumer loop last went round, and what is wrong with the
CSV, if anything. The check turns bad when a batch has not finished within
RECORDER_HEALTH_MAX_AGE_S, when the loop has not gone round for that long (broker lost,
publishing stuck), when the file itself is that old (the process is gone), or when the CSV is
refused; it prints why.
"""

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Liveness:
    """What the recorder reports about itself, written to `path` every `interval_s`."""

    def __init__(self, path: Path, interval_s: float = 2.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._busy_since: dict[str, float] = {}  # handler -> when its unfinished batch began
        self._loop_at: float | None = None  # the consumer loop last went round (None: not reported)
        self._problems: dict[str, str] = {}
        self._removed = False

    def batch_started(self, handler: str) -> None:
        with self._lock:
            self._busy_since.setdefault(handler, time.time())

    def batch_done(self, handler: str) -> None:
        with self._lock:
            self._busy_since.pop(handler, None)

    def loop_alive(self) -> None:
        """The consumer loop went round (idle or between batches)."""
        self._loop_at = time.time()

    def problem(self, key: str, text: str | None) -> None:
        with self._lock:
            if text is None:
                self._problems.pop(key, None)
            else:
                self._problems[key] = text

    def start(self, stop: threading.Event) -> None:
        """Write the file now, then every `interval_s` on a daemon thread until `stop`."""
        self.write()

        def loop() -> None:
            while not stop.wait(self.interval_s):
                try:
                    self.write()
                except OSError as error:
                    logger.warning("cannot write the health file %s: %s", self.path, error)

        threading.Thread(target=loop, name="health", daemon=True).start()

    def write(self) -> None:
        with self._lock:
            if self._removed:
                return
            state = {
                "pid": os.getpid(),
                "written_at": time.time(),
                "busy_since": dict(self._busy_since),
                "loop_at": self._loop_at,
                "problems": dict(self._problems),
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            part = self.path.with_name(self.path.name + ".part")
            part.write_text(json.dumps(state))
            part.replace(self.path)  # a reader sees the old state or the new, never half

    def remove(self) -> None:
        """At a clean stop: no file, so the check says "not running" rather than "stuck"."""
        with self._lock:
            self._removed = True
            self.path.unlink(missing_ok=True)


def check(path: Path, max_age_s: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, why) from the file a running recorder keeps."""
    now = time.time() if now is None else now
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return False, f"unhealthy: no {path}: the recorder is not running (or is still starting)"
    except (OSError, ValueError) as error:
        return False, f"unhealthy: cannot read {path}: {error}"
    problems = []
    written = now - float(state.get("written_at", 0))
    if written > max_age_s:
        problems.append(f"{path} was last written {written:.0f}s ago: the recorder is gone or frozen")
    for handler, since in sorted((state.get("busy_since") or {}).items()):
        if now - float(since) > max_age_s:
            problems.append(
                f"no batch of {handler} completed for {now - float(since):.0f}s: a database call "
                "or the broker is stuck or failing (see the recorder's log)"
            )
    loop_at = state.get("loop_at")
    if loop_at is not None and now - float(loop_at) > max_age_s:
        problems.append(f"the consumer loop has not run for {now - float(loop_at):.0f}s (broker lost?)")
    problems += [text for _, text in sorted((state.get("problems") or {}).items())]
    if problems:
        return False, "unhealthy: " + "; ".join(problems)
    return True, f"ok (recorder pid {state.get('pid')})"
