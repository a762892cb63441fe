"""docker-compose.node.yml (a worker machine) and docker-compose.central-tls.yml (the central
machine opened to it): valid, TLS to both servers with the node's own broker users, the same
recognition settings and hardening as the central recognizers."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.paths import ROOT
from services.capture.settings import CaptureSettings
from services.common import db_grants, topology
from services.recognizer.settings import RecognizerSettings
from tests.unit.deploy import support

NODE = "room-12"
REQUIRED = (
    "NODE_NAME",
    "CENTRAL_HOST",
    "NODE_RECOGNIZER_PASSWORD",
    "NODE_DATABASE_USER",
    "NODE_DATABASE_PASSWORD",
)
NODE_ENV = {
    "NODE_NAME": NODE,
    "CENTRAL_HOST": "central.school.example",
    "NODE_RECOGNIZER_PASSWORD": "recognizersecret1",
    "NODE_CAPTURE_PASSWORD": "capturesecret1",
    "NODE_DATABASE_USER": "attendance_room12",
    "NODE_DATABASE_PASSWORD": "dbsecret1",
}
NODE_FILES = (support.NODE_COMPOSE_FILE,)
CENTRAL_FILES = (support.COMPOSE_FILE, support.CENTRAL_TLS_FILE)


def node_config(tmp_path: Path, env: dict[str, str] = NODE_ENV) -> dict[str, Any]:
    result = support.run_compose(env, "config", "--format", "json", tmp_path=tmp_path, files=NODE_FILES)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Any]:
    services: dict[str, Any] = node_config(tmp_path)["services"]
    return services


def test_the_node_file_is_valid_with_node_env_example_filled_in(tmp_path: Path) -> None:
    documented = support.env_example(support.NODE_ENV_EXAMPLE)
    empty = {name for name, doc in documented.items() if doc.active and not doc.value}
    assert empty == set(NODE_ENV), "only the node's name, the central host and the credentials start empty"
    # Every variable the file interpolates is documented there, with its default.
    assert support.interpolated_names(support.NODE_COMPOSE_FILE) <= set(documented)
    defaults = {name: doc.value for name, doc in documented.items() if doc.value}
    result = support.run_compose(
        {**defaults, **NODE_ENV}, "config", "--quiet", tmp_path=tmp_path, files=NODE_FILES
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("variable", REQUIRED)
def test_a_missing_node_setting_stops_compose_with_a_helpful_message(variable: str, tmp_path: Path) -> None:
    env = {name: value for name, value in NODE_ENV.items() if name != variable}
    result = support.run_compose(env, "config", "--quiet", tmp_path=tmp_path, files=NODE_FILES)
    assert result.returncode != 0
    assert f"required variable {variable} is missing a value" in result.stderr
    assert "copy node.env.example to .env" in result.stderr


def test_only_workers_run_on_a_node_and_capture_is_chosen_with_a_profile(node: dict[str, Any]) -> None:
    assert set(node) == {"recognizer", "capture"}
    assert node["capture"]["profiles"] == ["capture"] and "profiles" not in node["recognizer"]
    assert all("depends_on" not in service for service in node.values())  # nothing local to wait for


def test_the_node_reaches_the_broker_over_tls_as_its_own_users(node: dict[str, Any]) -> None:
    for service, password in (("recognizer", "recognizersecret1"), ("capture", "capturesecret1")):
        user = topology.node_user(service, NODE)
        environment = node[service]["environment"]
        assert environment["AMQP_URL"] == f"amqps://{user}:{password}@central.school.example:5671/%2F"
        assert environment["AMQP_CA_FILE"] == "/certs/ca.pem"
        ca = next(v for v in node[service]["volumes"] if v["target"] == "/certs/ca.pem")
        assert ca["read_only"] is True and ca["source"].endswith("certs/ca.pem")


def test_the_recognizer_reaches_mysql_over_verified_tls(node: dict[str, Any]) -> None:
    environment = node["recognizer"]["environment"]
    assert environment["DATABASE_URL"] == (
        "mysql+pymysql://attendance_room12:dbsecret1@central.school.example:3306/attendance"
    )
    assert environment["DATABASE_CA_FILE"] == "/certs/ca.pem"
    assert "DATABASE_URL" not in node["capture"]["environment"]  # capture uses no database


def test_node_services_read_exactly_their_settings_and_recognize_as_the_central_ones(
    node: dict[str, Any], services: dict[str, Any]
) -> None:
    for name, settings, left in (
        ("recognizer", RecognizerSettings, {"RECOGNIZER_WORKER_ID"}),  # the container's, per replica
        ("capture", CaptureSettings, set()),
    ):
        environment = set(node[name]["environment"])
        assert environment <= support.fields(settings), name
        assert support.fields(settings) - environment == left, name
    # Faces are enrolled centrally with the recognition settings: a node passes the same ones.
    central = {name for name in services["recognizer"]["environment"] if name.startswith("RECOGNIZER_")}
    assert {name for name in node["recognizer"]["environment"] if name.startswith("RECOGNIZER_")} == central


def test_node_services_have_the_central_hardening(node: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in node.items():
        central = services[name]
        for key in ("cap_drop", "security_opt", "mem_limit", "stop_grace_period", "build"):
            assert service[key] == central[key], (name, key)
        assert service["healthcheck"]["test"] == central["healthcheck"]["test"], name


def test_the_central_tls_override_publishes_tls_ports_and_keeps_the_rest(tmp_path: Path) -> None:
    result = support.run_compose(
        support.active_env(), "config", "--format", "json", tmp_path=tmp_path, files=CENTRAL_FILES
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    rabbitmq, mysql = services["rabbitmq"], services["mysql"]
    assert [(p["published"], p["target"]) for p in rabbitmq["ports"] if p["target"] == 5671] == [
        ("5671", 5671)
    ]
    assert {"/etc/rabbitmq/conf.d/95-tls.conf", "/etc/rabbitmq/tls", "/var/lib/rabbitmq"} <= {
        v["target"] for v in rabbitmq["volumes"]
    }  # merged with the main file's mounts, not instead of them
    assert [(p["published"], p["target"]) for p in mysql["ports"]] == [("3306", 3306)]
    assert mysql["command"][:3] == [
        "mysqld",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
    ]
    assert {"--ssl-ca=/etc/mysql/tls/ca.pem", "--ssl-cert=/etc/mysql/tls/server.pem"} <= set(mysql["command"])
    assert {"/etc/mysql/tls", "/var/lib/mysql"} <= {v["target"] for v in mysql["volumes"]}
    # Nothing new to set on the central machine: the override's variables all have defaults.
    assert not any(":?" in line for line in support.CENTRAL_TLS_FILE.read_text().splitlines())


def test_rabbitmqs_tls_listener_uses_the_mounted_certificates() -> None:
    conf = dict(
        line.split(" = ", 1)
        for line in (ROOT / "rabbitmq" / "tls.conf").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["listeners.ssl.default"] == "5671"
    assert {conf[f"ssl_options.{key}"] for key in ("cacertfile", "certfile", "keyfile")} == {
        "/etc/rabbitmq/tls/ca.pem",
        "/etc/rabbitmq/tls/server.pem",
        "/etc/rabbitmq/tls/server.key",
    }


def test_the_readmes_node_mysql_user_has_the_recognizers_privileges() -> None:
    section = (
        (ROOT / "README.md").read_text().split("## Workers on other machines", 1)[1].split("\n## ", 1)[0]
    )
    granted = {
        match.group(2): tuple(part.strip() for part in match.group(1).split(","))
        for match in re.finditer(r"GRANT (.+?) ON attendance\.(\w+) TO 'attendance_room12'@'%';", section)
    }
    assert granted == db_grants.PRIVILEGES["recognizer"]
    assert "IDENTIFIED BY '...' REQUIRE SSL;" in section
