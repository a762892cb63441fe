"""Every setting is documented in .env.example and reaches its container, or is left to its
default on purpose; compose sets nothing the services do not read."""

from pathlib import Path
from typing import Any

import pytest

from services.recognizer.enroll import EnrollSettings
from tests.unit.deploy import support

# Settings deliberately NOT passed to a container, so the settings class's default applies.
# Each needs a reason; anything else a service reads must appear in its `environment:`.
LEFT_TO_DEFAULT: dict[str, dict[str, str]] = {
    "recognizer": {
        # <hostname>-<pid>: the hostname is the container id, so each replica differs; one value
        # in compose would be shared by every replica of `--scale recognizer=N`.
        "RECOGNIZER_WORKER_ID": "unique per replica by default",
    },
    "api": {
        # The port mapping and the health check use 0.0.0.0:8000; the host side is API_HOST_PORT.
        "API_HOST": "must listen on every interface of the container",
        "API_PORT": "fixed inside the container",
    },
    "web": {
        # Likewise; the host side is WEB_HOST_PORT.
        "WEB_HOST": "must listen on every interface of the container",
        "WEB_PORT": "fixed inside the container",
    },
}

# Variables Compose itself reads from .env (not interpolated in the file).
COMPOSE_BUILTINS = {"COMPOSE_PROFILES"}


@pytest.mark.parametrize("service", sorted(support.SERVICE_SETTINGS))
def test_every_setting_is_set_or_deliberately_left_to_its_default(
    service: str, services: dict[str, Any]
) -> None:
    reads = support.fields(support.SERVICE_SETTINGS[service])
    environment = set(services[service]["environment"])
    defaults = set(LEFT_TO_DEFAULT.get(service.removesuffix("-webcam"), {}))
    assert environment - reads == set(), "compose sets variables the service does not read"
    assert reads - environment - defaults == set(), (
        "add these to the service's environment or LEFT_TO_DEFAULT"
    )
    assert defaults <= reads and not defaults & environment, "LEFT_TO_DEFAULT is out of date"


def test_enrollment_in_the_api_container_has_all_it_needs(services: dict[str, Any]) -> None:
    # `docker compose run --entrypoint python api -m services.recognizer.enroll ...`
    assert support.fields(EnrollSettings) <= set(services["api"]["environment"])


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(support.env_example())
    for settings in support.ALL_SETTINGS:
        missing = support.fields(settings) - documented
        assert not missing, f"{settings.__name__}: document {sorted(missing)} in .env.example"


def test_documented_defaults_are_the_real_defaults() -> None:
    documented = support.env_example()
    for settings in support.ALL_SETTINGS:
        for name, field in settings.model_fields.items():
            doc = documented[name.upper()]
            if field.default_factory is not None or field.default is None:
                # Computed per process (worker id, secret key) or unset (late marking off).
                assert (doc.value, doc.active) == ("", False), name.upper()
            else:
                assert (doc.value, doc.active) == (str(field.default), False), name.upper()


def test_every_compose_variable_is_documented_and_nothing_else_is(tmp_path: Path) -> None:
    variables = support.interpolated_names()
    assert set(support.compose_variables(tmp_path)) <= variables
    documented = set(support.env_example())
    settings = set().union(*(support.fields(s) for s in support.ALL_SETTINGS))
    assert variables - documented == set(), "document these compose variables in .env.example"
    assert documented - variables - settings - COMPOSE_BUILTINS == set(), (
        ".env.example documents unknown names"
    )


def test_documented_compose_defaults_are_the_real_ones(tmp_path: Path) -> None:
    documented = support.env_example()
    for name, variable in support.compose_variables(tmp_path).items():
        if variable["DefaultValue"]:
            assert documented[name].value == variable["DefaultValue"], name


def test_only_the_secrets_are_required(tmp_path: Path) -> None:
    required = {name for name, v in support.compose_variables(tmp_path).items() if v["Required"]}
    assert required == set(support.SECRETS)


def test_pass_through_settings_take_their_value_from_env(tmp_path: Path) -> None:
    # A setting listed without a value reaches the container when .env sets it...
    env = {**support.active_env(), "RECOGNIZER_TOLERANCE": "0.5", "TIMEZONE": "Europe/Paris"}
    tuned = support.resolved_config(tmp_path, env)["services"]
    assert tuned["recognizer"]["environment"]["RECOGNIZER_TOLERANCE"] == "0.5"
    assert tuned["api"]["environment"]["RECOGNIZER_TOLERANCE"] == "0.5"
    assert {tuned[name]["environment"]["TIMEZONE"] for name in support.SERVICE_SETTINGS} == {"Europe/Paris"}


def test_unset_pass_through_settings_stay_unset(services: dict[str, Any]) -> None:
    # ...and stays unset otherwise (null: not given to the container), so the class default applies.
    assert services["recognizer"]["environment"]["RECOGNIZER_TOLERANCE"] is None
    assert services["web"]["environment"]["WEB_SECRET_KEY"] is None
