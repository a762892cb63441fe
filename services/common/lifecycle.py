"""Process lifecycle: a stop event set by SIGTERM or Ctrl-C, so every loop can finish cleanly."""

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set on SIGTERM/SIGINT; a second signal exits at once."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        logger.info("%s received: finishing the work in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def every(interval_s: float, action: Callable[[], None], stop: threading.Event, name: str) -> None:
    """Run `action` every `interval_s` seconds on a daemon thread until `stop` is set."""
    if interval_s <= 0:
        return

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                action()
            except Exception:
                logger.exception("periodic task %s failed", name)

    threading.Thread(target=loop, name=name, daemon=True).start()
