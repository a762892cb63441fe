"""RabbitMQ plumbing shared by every service, the only code that speaks pika.

- `errors`: which broker errors are worth reconnecting for, and `BrokerRefused` for the others;
- `connection`: connect with backoff, declare the topology once, `broker_reachable` for health;
- `publisher`: `publish` onto a channel, `Publisher` (confirmed, occasional messages),
  `StreamPublisher` (unconfirmed, disposable streams such as frames and heartbeats);
- `subscriber`: private queues without acks (`subscribe`, `Subscriber`), for views and signals;
- `consumer`: `Consumer`, one queue with an explicit ack policy (optionally a `Schedule` that
  chooses what to handle next and drops what it supersedes).

Names, arguments and bindings come from `services.common.topology`; what handlers receive and
return (`Delivery`, `Handled`, `Outgoing`, `TransientError`) from `services.common.transport`.
"""

from services.common.amqp.connection import (
    broker_reachable,
    close_quietly,
    closing,
    connect,
    connection_parameters,
    declare_topology,
)
from services.common.amqp.consumer import Consumer, Schedule
from services.common.amqp.errors import (
    CONNECTION_ERRORS,
    EXIT_BROKER_REFUSED,
    BrokerRefused,
    declaring,
    fatal_reason,
    refuse,
)
from services.common.amqp.publisher import Publisher, StreamPublisher, message_properties, publish
from services.common.amqp.subscriber import Subscriber, subscribe

__all__ = [
    "CONNECTION_ERRORS",
    "EXIT_BROKER_REFUSED",
    "BrokerRefused",
    "Consumer",
    "Publisher",
    "Schedule",
    "StreamPublisher",
    "Subscriber",
    "broker_reachable",
    "close_quietly",
    "closing",
    "connect",
    "connection_parameters",
    "declare_topology",
    "declaring",
    "fatal_reason",
    "message_properties",
    "publish",
    "refuse",
    "subscribe",
]
