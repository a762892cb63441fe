"""The transport's vocabulary, free of pika: what a handler receives and returns.

Service logic (`service.py`) speaks only these types, so unit tests drive it with plain
objects and `services.common.amqp` maps them onto RabbitMQ.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common.messages import Message


class TransientError(Exception):
    """Processing failed for a reason that will pass (a database restart): try again later."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff delays: 0.5, 1, 2, 4, ... capped, forever."""

    first_s: float = 0.5
    max_s: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


@dataclass(frozen=True)
class Delivery:
    """One received message."""

    body: bytes
    routing_key: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    redelivered: bool = False
    delivery_tag: int = 0
    # The exchange it was published to ("" for the default one); None where unknown (tests).
    exchange: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the delivery that produced it is handled."""

    exchange: str
    routing_key: str
    message: Message
    persistent: bool = True


@dataclass(frozen=True)
class Handled:
    """The outcome for one delivery: publish these, then ack; or reject with a reason."""

    publish: Sequence[Outgoing] = ()
    rejected: str | None = None


Handler = Callable[[list[Delivery]], list[Handled]]
