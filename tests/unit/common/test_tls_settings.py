"""TLS to a central broker and database (workers on other machines): the options built from
AMQP_CA_FILE and DATABASE_CA_FILE, and the checks on them."""

import ssl
from pathlib import Path

import pymysql
import pytest
from pydantic import ValidationError

from services.common.amqp.connection import connection_parameters
from services.common.db import tls_connect_args
from services.common.settings import BrokerSettings, DatabaseSettings, load_settings
from tests.support.tls import make_certificates

URL = "amqps://recognizer-room-12:secret@broker.school.example:5671/%2F"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return make_certificates(tmp_path, "broker.school.example").ca_file


def test_amqps_verifies_the_broker_against_the_ca_file_and_the_urls_host(ca_file: Path) -> None:
    [params] = connection_parameters(BrokerSettings(amqp_url=URL, amqp_ca_file=ca_file), "recognizer")
    assert params.ssl_options is not None
    assert (params.host, params.port) == ("broker.school.example", 5671)
    assert params.ssl_options.server_hostname == "broker.school.example"  # SNI and the name checked
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    trusted = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    assert trusted == [{"commonName": "attendance test CA"}]  # this CA only, not the system's


def test_amqps_without_a_ca_file_trusts_the_systems_cas_and_still_checks_the_name() -> None:
    [params] = connection_parameters(BrokerSettings(amqp_url=URL.replace(":5671", "")), "recognizer")
    assert params.ssl_options is not None and params.port == 5671  # amqps' own port
    assert params.ssl_options.server_hostname == "broker.school.example"
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert params.ssl_options.context.check_hostname


def test_plain_amqp_has_no_tls() -> None:
    [params] = connection_parameters(BrokerSettings(), "recognizer")
    assert params.ssl_options is None


def test_each_node_of_a_cluster_is_verified_under_its_own_name(ca_file: Path) -> None:
    nodes = ",".join(URL.replace("broker.", f"broker-{n}.") for n in (1, 2, 3))
    every = connection_parameters(BrokerSettings(amqp_url=nodes, amqp_ca_file=ca_file), "recognizer")
    assert [p.ssl_options.server_hostname for p in every if p.ssl_options] == [
        f"broker-{n}.school.example" for n in (1, 2, 3)
    ]
    with pytest.raises(ValidationError, match="every one with amqps://"):
        BrokerSettings(amqp_url=nodes.replace("amqps://", "amqp://", 1), amqp_ca_file=ca_file)


def test_a_ca_file_without_amqps_is_refused(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="AMQP_URL must start with amqps://"):
        BrokerSettings(amqp_url="amqp://u:p@broker:5672/%2F", amqp_ca_file=ca_file)


def test_a_missing_ca_file_stops_the_service_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMQP_URL", URL)
    monkeypatch.setenv("AMQP_CA_FILE", str(tmp_path / "nowhere.pem"))
    with pytest.raises(SystemExit) as stopped:
        load_settings(BrokerSettings, [])
    assert stopped.value.code == 2
    assert "invalid setting AMQP_CA_FILE=" in capsys.readouterr().err


def test_empty_ca_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_CA_FILE", "")
    monkeypatch.setenv("DATABASE_CA_FILE", "")
    assert BrokerSettings().amqp_ca_file is None and DatabaseSettings().database_ca_file is None


def test_mysql_tls_is_required_and_verified_with_a_ca_file(ca_file: Path) -> None:
    settings = DatabaseSettings(
        database_url="mysql+pymysql://u:p@db.school.example/attendance", database_ca_file=ca_file
    )
    assert tls_connect_args(settings) == {
        "ssl_ca": str(ca_file),
        "ssl_verify_cert": True,
        "ssl_verify_identity": True,
    }
    assert tls_connect_args(DatabaseSettings()) == {}


def test_pymysql_makes_of_the_tls_arguments_a_verifying_context(ca_file: Path) -> None:
    """The arguments are PyMySQL's: they give a context that requires the server's certificate
    and name, and TLS itself (no fallback to plain text)."""
    args = tls_connect_args(DatabaseSettings(database_ca_file=ca_file))
    connection = pymysql.connections.Connection(host="db.school.example", defer_connect=True, **args)
    assert connection.ssl and connection._ssl_required
    assert connection.ctx.verify_mode == ssl.CERT_REQUIRED and connection.ctx.check_hostname
