"""What the rabbitmq container imports at boot: exactly the topology of services.common.topology,
plus the operator's user and one user per service from the environment (a blank node that imports
definitions creates no default user), each service with exactly topology.PERMISSIONS."""

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.common import topology
from tests.unit.deploy import support

RABBITMQ_DIR = support.ROOT / "rabbitmq"
ENTRYPOINT = RABBITMQ_DIR / "entrypoint.sh"
USER, PASSWORD = "attendance", "s3cret-Pass_1.~"
SERVICE_PASSWORDS = {
    topology.password_variable(service): f"{service}-Pass_{n}" for n, service in enumerate(topology.SERVICES)
}


def run_entrypoint(target: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "ATTENDANCE_DEFINITIONS_DIR": str(target), **SERVICE_PASSWORDS}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *(command or ("true",))],
        check=False,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def loaded_files(target: Path) -> list[dict[str, Any]]:
    """The definitions files in the order RabbitMQ imports them (sorted by name)."""
    return [json.loads(path.read_text()) for path in sorted(target.iterdir())]


def key(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def conf_value(name: str) -> str:
    for line in (RABBITMQ_DIR / "rabbitmq.conf").read_text().splitlines():
        if line.split("=", 1)[0].strip() == name:
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not set in rabbitmq/rabbitmq.conf")


def test_the_broker_loads_the_directory_the_entrypoint_writes() -> None:
    default_target = re.search(r"ATTENDANCE_DEFINITIONS_DIR:-([^}]+)\}", ENTRYPOINT.read_text())
    assert default_target is not None
    assert conf_value("load_definitions") == default_target.group(1)


def test_the_container_runs_the_entrypoint_and_the_config(services: dict[str, Any]) -> None:
    rabbitmq = services["rabbitmq"]
    mounts = {Path(v["source"]): v for v in rabbitmq["volumes"] if v["type"] == "bind"}
    scripts = mounts[RABBITMQ_DIR]
    assert scripts["read_only"]
    assert rabbitmq["entrypoint"] == ["/bin/sh", f"{scripts['target']}/entrypoint.sh"]
    # Overriding the entrypoint drops the image's command: it must be given again.
    assert rabbitmq["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]
    conf = mounts[RABBITMQ_DIR / "rabbitmq.conf"]
    assert conf["target"].startswith("/etc/rabbitmq/conf.d/") and conf["read_only"]
    assert set(rabbitmq["environment"]) == {"RABBITMQ_USER", "RABBITMQ_PASSWORD", *SERVICE_PASSWORDS}


def test_the_loaded_topology_is_exactly_the_services_topology(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    files = loaded_files(tmp_path)
    expected = json.loads(json.dumps(topology.definitions()))
    for kind in ("exchanges", "queues", "bindings"):
        loaded = [item for definitions in files for item in definitions.get(kind, [])]
        assert key(loaded) == key(expected[kind]), kind
    # The services redeclare their queues with these arguments: any difference is a
    # PRECONDITION_FAILED at connect time, so they are compared exactly.
    queues = {q["name"]: q for definitions in files for q in definitions.get("queues", [])}
    assert queues[topology.CAMERAS_QUEUE]["arguments"] == {
        "x-queue-type": "quorum",
        "x-max-length": 100,
        "x-overflow": "drop-head",
    }
    assert all(q["durable"] and not q["auto_delete"] for q in queues.values())
    # Replicated over a cluster's nodes (issue 11): every durable queue, what the recorder consumes first.
    assert {q["arguments"].get("x-queue-type") for q in queues.values()} == {"quorum"}
    exchanges = {e["name"]: e for definitions in files for e in definitions.get("exchanges", [])}
    assert exchanges[topology.FRAMES_EXCHANGE]["type"] == "x-consistent-hash"


def test_the_container_enables_the_plugin_the_frames_exchange_needs(services: dict[str, Any]) -> None:
    mounts = {Path(v["source"]): v for v in services["rabbitmq"]["volumes"] if v["type"] == "bind"}
    plugins = mounts[RABBITMQ_DIR / "enabled_plugins"]
    assert plugins["target"] == "/etc/rabbitmq/enabled_plugins" and plugins["read_only"]
    # An Erlang term: a list of atoms ending in a full stop. Mounting it replaces the image's own
    # file, so the management UI (and its metrics endpoint) must stay in it.
    text = (RABBITMQ_DIR / "enabled_plugins").read_text().strip()
    match = re.fullmatch(r"\[([a-z_,\s]+)\]\.", text)
    assert match, text
    enabled = {name.strip() for name in match.group(1).split(",")}
    assert {"rabbitmq_consistent_hash_exchange", "rabbitmq_management", "rabbitmq_prometheus"} <= enabled


def test_the_application_user_comes_from_the_environment(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD).returncode == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["10-topology.json", "20-users.json", "30-permissions.json"]
    topology_file, users_file, permissions_file = loaded_files(tmp_path)
    # Files are imported one by one in name order: the vhost exists before the permission on it,
    # and the users before theirs.
    assert {v["name"] for v in topology_file["vhosts"]} == {"/"}
    assert users_file["users"] == [
        {"name": USER, "password": PASSWORD, "tags": ["management"]},
        *(
            {
                "name": topology.broker_user(s),
                "password": SERVICE_PASSWORDS[topology.password_variable(s)],
                "tags": [],
            }
            for s in topology.SERVICES
        ),
    ]
    assert permissions_file == topology.permission_definitions()
    assert users_file["permissions"] == [
        {"user": USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    ]
    assert "users" not in topology_file, "no user (and no guest) may be committed"
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} holds a password: owner only"


def test_stale_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "05-old.json").write_text("{}")
    assert run_entrypoint(tmp_path, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD).returncode == 0
    assert not (tmp_path / "05-old.json").exists()


def test_the_broker_starts_without_the_password_in_its_environment(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    command = ("sh", "-c", f'echo "user=$RABBITMQ_USER password=${{RABBITMQ_PASSWORD:-unset}}" > {seen}')
    result = run_entrypoint(tmp_path / "defs", *command, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert seen.read_text().strip() == f"user={USER} password=unset"
    leaked = tmp_path / "leaked"
    command = ("sh", "-c", f"env | grep PASSWORD > {leaked}; true")
    assert (
        run_entrypoint(
            tmp_path / "defs2", *command, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD
        ).returncode
        == 0
    )
    assert leaked.read_text() == ""


def test_the_committed_permissions_are_the_topologys() -> None:
    """rabbitmq/permissions.json is generated: `python -m services.common.topology permissions`."""
    committed = json.loads((RABBITMQ_DIR / "permissions.json").read_text())
    assert committed == topology.permission_definitions()
    assert "password" not in (RABBITMQ_DIR / "permissions.json").read_text()


def test_the_entrypoint_creates_a_user_per_service_of_the_topology() -> None:
    listed = re.search(r'^services="([^"]*)"$', ENTRYPOINT.read_text(), re.MULTILINE)
    assert listed is not None
    assert tuple(listed.group(1).split()) == topology.SERVICES
    assert [topology.broker_user(s) for s in topology.SERVICES] == list(topology.SERVICES)


@pytest.mark.parametrize("missing", list(SERVICE_PASSWORDS))
def test_a_missing_service_password_stops_the_container(missing: str, tmp_path: Path) -> None:
    env = {"RABBITMQ_USER": USER, "RABBITMQ_PASSWORD": PASSWORD, missing: ""}
    result = run_entrypoint(tmp_path, **env)
    assert result.returncode == 64
    assert f"{missing}: is not set" in result.stderr
    assert not (tmp_path / "20-users.json").exists()


def test_a_service_password_needing_escaping_is_refused(tmp_path: Path) -> None:
    result = run_entrypoint(
        tmp_path, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=PASSWORD, RABBITMQ_WEB_PASSWORD='we"b'
    )
    assert result.returncode == 64
    assert "may contain only letters" in result.stderr


@pytest.mark.parametrize("password", ["pa ss", 'pa"ss', "pa@ss", "pa:ss", "pa/ss", "pa$ss", "pa\\ss"])
def test_characters_that_would_need_escaping_are_refused(password: str, tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path, RABBITMQ_USER=USER, RABBITMQ_PASSWORD=password)
    assert result.returncode == 64
    assert "may contain only letters" in result.stderr
    assert not (tmp_path / "20-users.json").exists()


@pytest.mark.parametrize("missing", ["RABBITMQ_USER", "RABBITMQ_PASSWORD"])
def test_missing_credentials_stop_the_container_with_a_message(missing: str, tmp_path: Path) -> None:
    env = {"RABBITMQ_USER": USER, "RABBITMQ_PASSWORD": PASSWORD}
    del env[missing]
    result = run_entrypoint(tmp_path, **env)
    assert result.returncode != 0
    assert f"{missing}: is not set" in result.stderr
