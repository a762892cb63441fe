"""The recorder's tick: every RECORDER_TICK_S, on a thread of its own, the work that no
message triggers (docs/attendance-record.md): deciding the absences of sessions that ended,
journaling the marks and changes others made, and announcing them.

Its announcements go out on a confirming publisher of its own (the consumer's channel belongs
to the consumer's thread). Announcements are a view: one the broker cannot take is logged and
dropped; the CSV and MySQL have the row. A failed tick (MySQL away, a deadlock) is logged and
the next one tries again.
"""

import logging
import threading
from collections.abc import Callable

import pika.exceptions

from services.common.amqp import CONNECTION_ERRORS, Publisher
from services.common.transport import Outgoing

logger = logging.getLogger(__name__)

PUBLISH_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, pika.exceptions.AMQPError, OSError)


class Ticker:
    """Calls `work` every `every_s` seconds until `stop` is set, publishing what it returns."""

    def __init__(
        self,
        work: Callable[[], list[Outgoing]],
        publisher: Publisher,
        every_s: float,
        stop: threading.Event,
    ) -> None:
        self.work = work
        self.publisher = publisher
        self.every_s = every_s
        self.stop = stop

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.once()
        self.publisher.close()

    def once(self) -> None:
        try:
            outgoing = self.work()
        except Exception:
            logger.exception("the recorder's tick failed; trying again in %.1f s", self.every_s)
            return
        for message in outgoing:
            try:
                self.publisher.publish(message)
            except PUBLISH_ERRORS as error:
                logger.warning(
                    "could not announce %s (RabbitMQ: %s); MySQL and the CSV have it",
                    message.routing_key,
                    error or type(error).__name__,
                )

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="tick", daemon=True)
        thread.start()
        return thread
