"""docker-compose.yml: valid, secrets required, healthy-before-dependents, scalable, persistent."""

import re
from pathlib import Path
from typing import Any

import pytest

from services.api.settings import ApiSettings
from services.common import db_grants, topology
from services.recorder.settings import RecorderSettings
from services.web.settings import WebSettings
from tests.unit.deploy import support

PYTHON_SERVICES = ("capture", "capture-webcam", "recognizer", "recorder", "api", "web")
# Jobs that run once before the services: the MySQL schema and users, the broker's queues.
ONE_OFF = {"migrate", "rabbitmq-migrate"}


def test_config_is_valid_with_the_variables_of_env_example(tmp_path: Path) -> None:
    documented = support.env_example()
    empty = {name for name, doc in documented.items() if doc.active and not doc.value}
    assert empty == {*support.SECRETS, "COMPOSE_PROFILES"}, "only the secrets (and no profile) start empty"
    result = support.run_compose(support.active_env(), "config", "--quiet", tmp_path=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


def test_config_is_valid_with_every_documented_default_in_force(tmp_path: Path) -> None:
    # Uncommenting a default must never break compose (e.g. CAPTURE_RESTART, RECOGNIZER_REPLICAS).
    defaults = {name: doc.value for name, doc in support.env_example().items() if doc.value}
    result = support.run_compose({**defaults, **support.active_env()}, "config", "--quiet", tmp_path=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("secret", support.SECRETS)
def test_a_missing_secret_stops_compose_with_a_helpful_message(secret: str, tmp_path: Path) -> None:
    env = support.active_env()
    del env[secret]
    result = support.run_compose(env, "config", "--quiet", tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"required variable {secret} is missing a value" in result.stderr
    assert "copy .env.example to .env and set it" in result.stderr


def test_no_secret_is_written_in_the_file() -> None:
    for number, line in enumerate(support.COMPOSE_FILE.read_text().splitlines(), start=1):
        code = line.split("#", 1)[0]
        for match in re.finditer(r"PASSWORD\w*:\s+(\S+)", code):
            assert match.group(1).strip("\"'").startswith("${"), f"line {number}: {line.strip()}"


def test_the_expected_services_exist(services: dict[str, Any]) -> None:
    assert set(services) == {"rabbitmq", "mysql", "migrate", "rabbitmq-migrate", *PYTHON_SERVICES}


def test_capture_sources_are_chosen_with_profiles(services: dict[str, Any]) -> None:
    assert services["capture"]["profiles"] == ["capture"]
    assert services["capture-webcam"]["profiles"] == ["webcam"]
    assert all("profiles" not in services[name] for name in ("recognizer", "recorder", "api", "web"))
    webcam = services["capture-webcam"]
    assert webcam["environment"]["CAPTURE_SOURCE"] == "0"
    assert [device["target"] for device in webcam["devices"]] == ["/dev/video0"]
    media = [volume for volume in services["capture"]["volumes"] if volume["target"] == "/media"]
    assert media and media[0]["read_only"] is True


def test_recognizer_can_be_scaled(services: dict[str, Any]) -> None:
    # `--scale recognizer=N` needs no fixed container name and no fixed host port.
    assert all("container_name" not in service for service in services.values())
    assert "ports" not in services["recognizer"]
    assert services["recognizer"]["deploy"]["replicas"] == 2


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_OFF:  # runs once and exits: the others wait for it to complete
            continue
        test = service.get("healthcheck", {}).get("test", [])
        assert test and test[0] == "CMD", f"{name} needs a health check"
        assert "--check-config" not in test, f"{name}: --check-config does not look at the running process"
    assert services["rabbitmq"]["healthcheck"]["test"][1:] == [
        "rabbitmq-diagnostics",
        "-q",
        "check_port_connectivity",
    ]
    assert services["mysql"]["healthcheck"]["test"][1:3] == ["mysqladmin", "ping"]
    assert "/health" in services["api"]["healthcheck"]["test"][-1]
    assert "/health" in services["web"]["healthcheck"]["test"][-1]


def test_dependents_wait_until_their_dependencies_are_healthy(services: dict[str, Any]) -> None:
    expected = {
        "capture": {"rabbitmq", "rabbitmq-migrate"},
        "capture-webcam": {"rabbitmq", "rabbitmq-migrate"},
        "migrate": {"mysql"},
        "rabbitmq-migrate": {"rabbitmq"},
        "recognizer": {"rabbitmq", "rabbitmq-migrate", "migrate"},
        "recorder": {"rabbitmq", "rabbitmq-migrate", "migrate"},
        "api": {"rabbitmq", "rabbitmq-migrate", "migrate"},
        "web": {"rabbitmq", "rabbitmq-migrate", "api"},
    }
    for name, dependencies in expected.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == dependencies, name
        conditions = {d: c["condition"] for d, c in depends_on.items() if d not in ONE_OFF}
        assert set(conditions.values()) == {"service_healthy"}, name
        for job in ONE_OFF & set(depends_on):
            assert depends_on[job]["condition"] == "service_completed_successfully", (name, job)


def test_restart_policies_and_grace_periods(services: dict[str, Any]) -> None:
    for name in ONE_OFF:
        assert services[name]["restart"] == "on-failure"  # done once it succeeded
    for name, service in services.items():
        if name in ONE_OFF:
            continue
        assert service["restart"] == "unless-stopped", name
        # Docker's default 10 s cuts a clean shutdown short (web's waitress alone waits 5 s for its threads).
        assert support.seconds(service["stop_grace_period"]) >= 15, name
    assert support.seconds(services["mysql"]["stop_grace_period"]) >= 60


def test_python_services_run_without_privileges(services: dict[str, Any]) -> None:
    for name in PYTHON_SERVICES:
        assert services[name]["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in services[name]["security_opt"], name
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name
        assert services[name]["build"]["args"] == {"SERVICE": name.removesuffix("-webcam")}, name


def test_services_reach_rabbitmq_and_mysql_with_the_chosen_credentials(services: dict[str, Any]) -> None:
    password = support.SECRET_VALUES
    for name in PYTHON_SERVICES:
        # Each service has its own broker user (least privilege: topology.PERMISSIONS).
        service = name.removesuffix("-webcam")
        user, secret = topology.broker_user(service), password[topology.password_variable(service)]
        assert services[name]["environment"]["AMQP_URL"] == f"amqp://{user}:{secret}@rabbitmq:5672/%2F", name
    assert "AMQP_URL" not in services["migrate"]["environment"], "migrate needs no broker"
    # And its own MySQL user (least privilege: db_grants.PRIVILEGES), made by migrate as root.
    for name in db_grants.SERVICES:
        user, secret = db_grants.USERNAMES[name], password[f"MYSQL_{name.upper()}_PASSWORD"]
        assert services[name]["environment"]["DATABASE_URL"] == (
            f"mysql+pymysql://{user}:{secret}@mysql:3306/attendance"
        ), name
    migrate = services["migrate"]["environment"]
    root = password["MYSQL_ROOT_PASSWORD"]
    assert migrate["DATABASE_URL"] == f"mysql+pymysql://root:{root}@mysql:3306/attendance"
    for name in db_grants.SERVICES:
        variable = f"MYSQL_{name.upper()}_PASSWORD"
        assert migrate[variable] == password[variable], variable
    for name in PYTHON_SERVICES:
        if name.removesuffix("-webcam") not in db_grants.SERVICES:
            assert "DATABASE_URL" not in services[name]["environment"], f"{name} needs no database"
    mysql = services["mysql"]["environment"]
    assert mysql["MYSQL_DATABASE"] == "attendance" and "MYSQL_USER" not in mysql
    assert mysql["MYSQL_ROOT_PASSWORD"] == root
    broker = services["rabbitmq"]["environment"]
    assert broker["RABBITMQ_PASSWORD"] == password["RABBITMQ_PASSWORD"]
    for service in topology.SERVICES:
        variable = topology.password_variable(service)
        assert broker[variable] == password[variable], variable


def test_every_service_has_a_broker_password_of_its_own() -> None:
    values = [support.SECRET_VALUES[name] for name in support.BROKER_SERVICE_SECRETS]
    assert len(set(values)) == len(topology.SERVICES)
    # Every Python service's image is one of the services with a broker user.
    assert {name.removesuffix("-webcam") for name in PYTHON_SERVICES} == set(topology.SERVICES)


def test_mysql_keeps_its_data_and_migrations_run_before_every_database_user(config: dict[str, Any]) -> None:
    mysql = config["services"]["mysql"]
    assert re.fullmatch(r"mysql:8\.\d+\.\d+", mysql["image"]), "pin the exact MySQL 8 release"
    mounts = {volume["target"]: volume for volume in mysql["volumes"]}
    migrate = config["services"]["migrate"]
    # The migrations, then each service's MySQL user and privileges (db_grants).
    assert migrate["entrypoint"] == ["python", "-m", "services.common.db_grants", "setup"]
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    for name in ("recognizer", "recorder", "api"):
        assert (
            config["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    assert mounts["/var/lib/mysql"]["type"] == "volume"
    assert mounts["/var/lib/mysql"]["source"] in config["volumes"]
    assert "--character-set-server=utf8mb4" in mysql["command"]


def test_rabbitmq_is_pinned_and_keeps_its_data(config: dict[str, Any]) -> None:
    rabbitmq = config["services"]["rabbitmq"]
    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+-management", rabbitmq["image"])
    # The node's data directory is named after the hostname: it must not change with the container.
    assert rabbitmq["hostname"] == "rabbitmq"
    data = [volume for volume in rabbitmq["volumes"] if volume["target"] == "/var/lib/rabbitmq"]
    assert data and data[0]["type"] == "volume" and data[0]["source"] in config["volumes"]


def test_the_recorder_csv_is_on_a_named_volume(config: dict[str, Any]) -> None:
    recorder = config["services"]["recorder"]
    csv_dir = str(Path(recorder["environment"]["RECORDER_CSV_PATH"]).parent)
    assert (
        str(RecorderSettings.model_fields["recorder_csv_path"].default)
        != recorder["environment"]["RECORDER_CSV_PATH"]
    ), "the default is relative to the working directory, not on the volume"
    volume = next(v for v in recorder["volumes"] if v["target"] == csv_dir)
    assert volume["type"] == "volume" and volume["source"] in config["volumes"]


def test_ports_match_the_settings_the_services_listen_on(services: dict[str, Any]) -> None:
    api_port = ApiSettings.model_fields["api_port"].default
    web_port = WebSettings.model_fields["web_port"].default
    assert [p["target"] for p in services["api"]["ports"]] == [api_port]
    assert [p["target"] for p in services["web"]["ports"]] == [web_port]
    assert f"127.0.0.1:{api_port}/health" in services["api"]["healthcheck"]["test"][-1]
    assert f"127.0.0.1:{web_port}/health" in services["web"]["healthcheck"]["test"][-1]
    assert services["web"]["environment"]["WEB_API_URL"] == f"http://api:{api_port}"
    assert [(p["published"], p["target"]) for p in services["web"]["ports"]] == [("8080", web_port)]
    management = services["rabbitmq"]["ports"]
    assert [(p["host_ip"], p["target"]) for p in management] == [("127.0.0.1", 15672)]
    assert "ports" not in services["mysql"], "MySQL is reached over the compose network only"


def test_the_broker_queues_are_migrated_by_the_operator_before_any_service_declares_them(
    services: dict[str, Any],
) -> None:
    job = services["rabbitmq-migrate"]
    assert job["entrypoint"] == ["python", "-m", "services.common.amqp.migration"]
    user, password = "attendance", support.SECRET_VALUES["RABBITMQ_PASSWORD"]
    assert job["environment"]["AMQP_URL"] == f"amqp://{user}:{password}@rabbitmq:5672/%2F"
    assert "DATABASE_URL" not in job["environment"]
    assert job["cap_drop"] == ["ALL"] and "no-new-privileges:true" in job["security_opt"]
    for name in PYTHON_SERVICES:  # every one declares the topology when it connects
        assert (
            services[name]["depends_on"]["rabbitmq-migrate"]["condition"] == "service_completed_successfully"
        )
