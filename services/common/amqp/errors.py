"""Which broker errors are worth reconnecting for, and which must stop the service.

Reconnecting helps when the broker or the network went away for a while: connection refused
or reset, the broker shutting down (320 CONNECTION_FORCED), a missed heartbeat, a channel
closed for a runtime reason (an ack that timed out, an unknown delivery tag). It cannot help
when the broker refuses us for who we are or what we declare:

- the login (403 ACCESS_REFUSED, an authentication failure) or the virtual host (530 NOT_ALLOWED);
- a permission on an exchange or queue (403 ACCESS_REFUSED, at any time);
- at declare time, a queue or exchange that exists with other arguments (406 PRECONDITION_FAILED)
  or a missing one (404 NOT_FOUND): the broker's topology is not the one in `topology.py`;
- at declare time, an exchange type the broker does not know (503 COMMAND_INVALID): the frames
  exchange needs the consistent-hash exchange plugin enabled.

Those raise `BrokerRefused`: logged once, as one line, and the process exits with
`EXIT_BROKER_REFUSED` (it is a `SystemExit`) instead of looping on warnings forever.
"""

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions

logger = logging.getLogger("services.common.amqp")

# What a lost or refused broker connection raises; anything else is a bug and propagates.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionClosedByBroker,
    pika.exceptions.StreamLostError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.ChannelClosedByBroker,
    socket.gaierror,
    ConnectionError,
    # A publish the broker nacked: it could not take the message now (a quorum queue whose
    # leader was on a lost node, until a new one is elected). Nothing was acked for it, so
    # reconnecting and doing it again is what loses nothing (issue 11).
    pika.exceptions.NackError,
)

# The exit status of a service the broker refused (2 is a settings error: see settings.py).
EXIT_BROKER_REFUSED = 3

_ACCESS_REFUSED = 403
_NOT_FOUND = 404
_PRECONDITION_FAILED = 406
_COMMAND_INVALID = 503


class BrokerRefused(SystemExit):
    """The broker refused us for a reason reconnecting cannot fix: the service must stop.

    A `SystemExit`, so that uncaught it ends the process with `EXIT_BROKER_REFUSED` and no
    traceback (the reason was logged when it was raised), and no `except Exception` that
    keeps a loop alive swallows it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(EXIT_BROKER_REFUSED)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _detail(error: BaseException) -> str:
    if isinstance(error, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return f"{error.reply_code} {error.reply_text}"
    # pika wraps what the broker said during the handshake: ("ConnectionClosedByBroker: (403) '...'",)
    return str(error.args[0]) if error.args else type(error).__name__


def fatal_reason(error: BaseException, *, declaring: bool = False) -> str | None:
    """Why `error` must stop the service, or None if reconnecting may help (or it is not the broker's).

    `declaring`: the error arose while declaring the topology (or a private queue), where a
    404 or 406 means the broker's definitions differ from ours, not a passing condition.
    """
    if isinstance(error, pika.exceptions.AuthenticationError | pika.exceptions.ProbableAuthenticationError):
        return f"login refused ({_detail(error)}): check the user and password in AMQP_URL"
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        return (
            f"virtual host refused ({_detail(error)}): check the vhost in AMQP_URL "
            "and the user's permissions on it"
        )
    if not isinstance(
        error, pika.exceptions.ConnectionClosedByBroker | pika.exceptions.ChannelClosedByBroker
    ):
        return None
    if error.reply_code == _ACCESS_REFUSED:
        return f"access refused ({_detail(error)}): check the user's permissions on the vhost"
    if declaring and error.reply_code == _PRECONDITION_FAILED:
        return (
            f"the broker's topology differs from services/common/topology.py ({_detail(error)}); "
            "a queue's arguments (its type: classic before quorum queues) are migrated, messages "
            "kept, by `python -m services.common.amqp.migration` with the services stopped "
            "(compose's rabbitmq-migrate job); a stale exchange must be deleted"
        )
    if declaring and error.reply_code == _NOT_FOUND:
        return f"the broker lacks part of the topology ({_detail(error)})"
    if (
        declaring
        and error.reply_code == _COMMAND_INVALID
        and "unknown exchange type" in str(error.reply_text)
    ):
        return (
            f"the broker lacks an exchange type of the topology ({_detail(error)}): "
            "enable the plugin with `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange` "
            "(scripts/ensure_rabbitmq_plugins.sh; compose enables it through rabbitmq/enabled_plugins)"
        )
    return None


def refuse(error: BaseException, who: str, *, declaring: bool = False) -> None:
    """Raise `BrokerRefused` (logged, one line) if `error` is fatal; return if reconnecting may help."""
    reason = fatal_reason(error, declaring=declaring)
    if reason is None:
        return
    logger.error("%s: RabbitMQ refused us, stopping: %s", who, reason)
    raise BrokerRefused(reason) from error


@contextmanager
def declaring(who: str) -> Iterator[None]:
    """Around declarations: a 403, 404 or 406 from the broker stops the service (`BrokerRefused`)."""
    try:
        yield
    except CONNECTION_ERRORS as error:
        refuse(error, who, declaring=True)
        raise
