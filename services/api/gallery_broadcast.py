"""Announcing that enrolled faces changed, so every recognizer reloads its gallery.

MySQL is the source of truth: when the broker is down the change still stands, the caller
is told (a response header) and the recognizers catch up when they reconnect, since they
reload their gallery then.
"""

import logging

import pika.exceptions

from services.common import topology
from services.common.amqp import CONNECTION_ERRORS, Publisher
from services.common.messages import GalleryChanged
from services.common.settings import BrokerSettings
from services.common.transport import Outgoing

logger = logging.getLogger(__name__)

# The response header that tells a client whether the recognizers were told.
BROADCAST_HEADER = "X-Gallery-Broadcast"
SENT = "sent"
FAILED = "failed"
UNCHANGED = "unchanged"  # nothing to announce: no face was added or removed

_PUBLISH_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    pika.exceptions.AMQPError,  # e.g. the broker nacked the message
    OSError,
)


class GalleryAnnouncer:
    def __init__(self, settings: BrokerSettings) -> None:
        self._publisher = Publisher(settings, "api")

    def announce(self, reason: str, student_id: int | None = None) -> str:
        """Publish GalleryChanged (confirmed); SENT or FAILED, never raises for a broker problem."""
        message = GalleryChanged(reason=reason, student_id=student_id)
        try:
            self._publisher.publish(Outgoing(topology.GALLERY_EXCHANGE, "", message))
        except _PUBLISH_ERRORS as error:
            logger.warning(
                "gallery change (%s) saved but not broadcast, RabbitMQ unavailable (%s); "
                "recognizers will reload when they reconnect",
                reason,
                error or type(error).__name__,
            )
            return FAILED
        logger.info("gallery change broadcast: %s", reason)
        return SENT

    def close(self) -> None:
        self._publisher.close()
