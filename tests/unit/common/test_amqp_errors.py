"""Which broker errors are worth reconnecting for, and which stop the service."""

import socket
import threading

import pika.exceptions
import pytest

from services.common.amqp import (
    EXIT_BROKER_REFUSED,
    BrokerRefused,
    Consumer,
    declaring,
    fatal_reason,
    refuse,
)
from services.common.settings import BrokerSettings

LOGIN_REFUSED = pika.exceptions.ProbableAuthenticationError(
    "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'"
)
VHOST_REFUSED = pika.exceptions.ProbableAccessDeniedError(
    "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost school not found'"
)
INEQUIVALENT = pika.exceptions.ChannelClosedByBroker(
    406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'recognizer.frames'"
)
NO_EXCHANGE = pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no exchange 'capture' in vhost '/'")
NO_PERMISSION = pika.exceptions.ChannelClosedByBroker(
    403, "ACCESS_REFUSED - access to exchange 'capture' in vhost '/' refused for user 'attendance'"
)

RECONNECT = [
    pytest.param(ConnectionRefusedError(111, "Connection refused"), id="connection refused"),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="connection reset"),
    pytest.param(socket.gaierror(-2, "Name or service not known"), id="unknown host"),
    pytest.param(pika.exceptions.AMQPConnectionError("connect failed"), id="cannot connect"),
    pytest.param(pika.exceptions.StreamLostError("Transport indicated EOF"), id="stream lost"),
    pytest.param(pika.exceptions.AMQPHeartbeatTimeout("no heartbeat"), id="heartbeat timeout"),
    pytest.param(
        pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker forced connection closure"),
        id="broker shutting down",
    ),
    pytest.param(
        pika.exceptions.ChannelClosedByBroker(405, "RESOURCE_LOCKED - cannot obtain exclusive access"),
        id="exclusive queue of a dying connection",
    ),
    pytest.param(pika.exceptions.ChannelWrongStateError("Channel is closed."), id="channel closed"),
]

# A 404 or 406 once consuming is about one message or one moment, not the topology.
RECONNECT_AT_RUNTIME = [
    pytest.param(
        pika.exceptions.ChannelClosedByBroker(
            406, "PRECONDITION_FAILED - delivery acknowledgement timed out"
        ),
        id="ack timeout",
    ),
    pytest.param(
        pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - unknown delivery tag 7"),
        id="unknown delivery tag",
    ),
    pytest.param(pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'q'"), id="queue deleted"),
]

FATAL = [
    pytest.param(LOGIN_REFUSED, "login refused", id="login refused"),
    pytest.param(pika.exceptions.AuthenticationError("PLAIN"), "login refused", id="authentication failure"),
    pytest.param(VHOST_REFUSED, "virtual host refused", id="virtual host refused"),
    pytest.param(NO_PERMISSION, "access refused", id="no permission"),
    pytest.param(
        pika.exceptions.ConnectionClosedByBroker(403, "ACCESS_REFUSED - user deleted"),
        "access refused",
        id="connection closed: access refused",
    ),
]


@pytest.mark.parametrize("error", RECONNECT)
@pytest.mark.parametrize("declaring", [False, True], ids=["running", "declaring"])
def test_passing_troubles_are_worth_reconnecting_for(error: BaseException, declaring: bool) -> None:
    assert fatal_reason(error, declaring=declaring) is None


@pytest.mark.parametrize("error", RECONNECT_AT_RUNTIME)
def test_channel_errors_while_consuming_are_worth_reconnecting_for(error: BaseException) -> None:
    assert fatal_reason(error, declaring=False) is None


@pytest.mark.parametrize(("error", "said"), FATAL)
@pytest.mark.parametrize("declaring", [False, True], ids=["running", "declaring"])
def test_refusals_stop_the_service(error: BaseException, said: str, declaring: bool) -> None:
    reason = fatal_reason(error, declaring=declaring)
    assert reason is not None and reason.startswith(said)


@pytest.mark.parametrize("error", [INEQUIVALENT, NO_EXCHANGE], ids=["406", "404"])
def test_a_topology_mismatch_stops_the_service_at_declare_time_only(error: BaseException) -> None:
    reason = fatal_reason(error, declaring=True)
    assert reason is not None and error.args[1] in reason
    assert fatal_reason(error, declaring=False) is None


def test_errors_that_are_not_the_brokers_are_not_classified() -> None:
    assert fatal_reason(ValueError("a bug"), declaring=True) is None


def test_a_refusal_is_one_log_line_and_a_non_zero_exit(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(BrokerRefused) as raised:
        refuse(INEQUIVALENT, "recorder", declaring=True)
    assert isinstance(raised.value, SystemExit)
    assert raised.value.code == EXIT_BROKER_REFUSED != 0
    assert raised.value.__cause__ is INEQUIVALENT
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert "recorder: RabbitMQ refused us, stopping" in errors[0].getMessage()
    assert "inequivalent arg 'x-max-length'" in errors[0].getMessage()


def test_refuse_returns_when_reconnecting_may_help() -> None:
    refuse(pika.exceptions.StreamLostError("EOF"), "recorder", declaring=True)


def test_declaring_turns_only_fatal_errors_into_a_refusal() -> None:
    with pytest.raises(BrokerRefused), declaring("capture"):
        raise NO_EXCHANGE
    with pytest.raises(pika.exceptions.StreamLostError), declaring("capture"):
        raise pika.exceptions.StreamLostError("EOF")
    with pytest.raises(ValueError, match="a bug"), declaring("capture"):
        raise ValueError("a bug")


def test_a_refused_login_stops_a_consumer_without_retrying(caplog: pytest.LogCaptureFixture) -> None:
    """No broker needed: pika raises the refusal before anything else (monkeypatched connect)."""
    attempts: list[object] = []

    def refused_connection(params: object) -> None:
        attempts.append(params)
        raise LOGIN_REFUSED

    stop = threading.Event()
    consumer = Consumer(BrokerSettings(), "recorder", "recorder.identity", lambda batch: [], stop=stop)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pika, "BlockingConnection", refused_connection)
        with pytest.raises(BrokerRefused, match="login refused"):
            consumer.run()
    assert len(attempts) == 1
    assert stop.is_set(), "the other loops of the service stop with it"
    assert not any("retrying" in record.getMessage() for record in caplog.records)
