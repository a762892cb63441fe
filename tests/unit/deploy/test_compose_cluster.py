"""docker-compose.cluster.yml (issue 11): three RabbitMQ nodes that form one cluster by
themselves (rabbitmq/cluster.conf), sharing a cookie, each with its own data, and every service
given every node's URL."""

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import BrokerSettings
from tests.unit.deploy import support
from tests.unit.deploy.test_rabbitmq_definitions import PASSWORD, USER, run_entrypoint

CLUSTER_FILE = support.ROOT / "docker-compose.cluster.yml"
CLUSTER_CONF = support.ROOT / "rabbitmq" / "cluster.conf"
NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
COOKIE = "0123456789abcdefCOOKIE"
CLIENTS = ("capture", "capture-webcam", "recognizer", "recorder", "api", "web", "rabbitmq-migrate")


def cluster_config(tmp_path: Path, **env: str) -> Any:
    result = support.run_compose(
        {**support.active_env(), **env},
        "config",
        "--format",
        "json",
        tmp_path=tmp_path,
        files=(support.COMPOSE_FILE, CLUSTER_FILE),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = cluster_config(tmp_path_factory.mktemp("cluster"), RABBITMQ_CLUSTER_COOKIE=COOKIE)
    result: dict[str, Any] = config["services"]
    return result


def conf() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in CLUSTER_CONF.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.lstrip().startswith("#")}


def test_the_cookie_is_required(tmp_path: Path) -> None:
    result = support.run_compose(
        support.active_env(),
        "config",
        "--quiet",
        tmp_path=tmp_path,
        files=(support.COMPOSE_FILE, CLUSTER_FILE),
    )
    assert result.returncode != 0
    assert "required variable RABBITMQ_CLUSTER_COOKIE is missing a value" in result.stderr


def test_three_nodes_named_as_the_cluster_config_lists_them(services: dict[str, Any]) -> None:
    settings = conf()
    assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = [
        value
        for name, value in sorted(settings.items())
        if name.startswith("cluster_formation.classic_config")
    ]
    assert listed == [f"rabbit@{services[node]['hostname']}" for node in NODES]
    # Queues declared before the others joined grow to a replica on each node.
    assert settings["quorum_queue.continuous_membership_reconciliation.enabled"] == "true"
    assert int(settings["quorum_queue.continuous_membership_reconciliation.target_group_size"]) == len(NODES)


def test_every_node_is_the_main_files_broker_with_its_own_data(services: dict[str, Any]) -> None:
    first = services["rabbitmq"]
    data = set()
    for name in NODES:
        node = services[name]
        for key in ("image", "entrypoint", "command", "healthcheck", "mem_limit", "restart"):
            assert node[key] == first[key], (name, key)
        mounts = {volume["target"]: volume for volume in node["volumes"]}
        assert Path(mounts["/etc/rabbitmq/conf.d/91-cluster.conf"]["source"]) == CLUSTER_CONF
        assert mounts["/etc/rabbitmq/conf.d/91-cluster.conf"]["read_only"]
        assert mounts["/var/lib/rabbitmq"]["type"] == "volume"
        data.add(mounts["/var/lib/rabbitmq"]["source"])
        assert node["environment"]["RABBITMQ_CLUSTER_COOKIE"] == COOKIE
        assert node["environment"]["RABBITMQ_PASSWORD"] == first["environment"]["RABBITMQ_PASSWORD"]
    assert len(data) == len(NODES)
    assert [name for name in NODES if services[name].get("ports")] == ["rabbitmq"]  # one management UI


def test_every_client_is_given_every_node(services: dict[str, Any]) -> None:
    for name in CLIENTS:
        urls = BrokerSettings(amqp_url=services[name]["environment"]["AMQP_URL"]).amqp_urls
        hosts = [url.split("@", 1)[1].split("/", 1)[0] for url in urls]
        assert hosts == [f"{node}:5672" for node in NODES], name
        assert len({url.split("@", 1)[0] for url in urls}) == 1, name  # one user, on every node
    migrate = services["rabbitmq-migrate"]["environment"]["AMQP_URL"]
    assert migrate.startswith(f"amqp://attendance:{support.SECRET_VALUES['RABBITMQ_PASSWORD']}@rabbitmq:")


def test_the_entrypoint_writes_the_shared_cookie_for_the_broker_only(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    seen = tmp_path / "seen"
    result = run_entrypoint(
        tmp_path / "defs",
        "sh",
        "-c",
        f'echo "${{RABBITMQ_CLUSTER_COOKIE:-unset}}" > {seen}',
        RABBITMQ_USER=USER,
        RABBITMQ_PASSWORD=PASSWORD,
        RABBITMQ_CLUSTER_COOKIE=COOKIE,
        ATTENDANCE_COOKIE_FILE=str(cookie),
    )
    assert result.returncode == 0, result.stderr
    assert cookie.read_text() == COOKIE
    assert stat.S_IMODE(cookie.stat().st_mode) == 0o400  # Erlang refuses a cookie others can read
    assert seen.read_text().strip() == "unset"


def test_a_cookie_needing_escaping_is_refused(tmp_path: Path) -> None:
    result = run_entrypoint(
        tmp_path / "defs",
        RABBITMQ_USER=USER,
        RABBITMQ_PASSWORD=PASSWORD,
        RABBITMQ_CLUSTER_COOKIE="a b'c",
        ATTENDANCE_COOKIE_FILE=str(tmp_path / "cookie"),
    )
    assert result.returncode == 64 and "RABBITMQ_CLUSTER_COOKIE" in result.stderr
    assert not (tmp_path / "cookie").exists()
