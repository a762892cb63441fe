"""Settings every service shares, and how they are loaded, checked and shown.

Each service has one settings class built from these mixins; every field is an environment
variable of the same name in upper case (documented in `.env.example`).
"""

import sys
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

CAMERA_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def _valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from error
    return name


TimeZoneName = Annotated[str, AfterValidator(_valid_timezone)]


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Dates and times shown to people (CSV, dashboard, default sessions per day) use this zone;
    # everything stored is UTC.
    timezone: TimeZoneName = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class BrokerSettings(BaseSettings):
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F", pattern=r"^amqps?://", description="RabbitMQ URL"
    )
    # Seconds; a missed heartbeat tells both sides that the peer is gone.
    amqp_heartbeat_s: int = Field(30, ge=5, le=600)


class DatabaseSettings(BaseSettings):
    database_url: str = Field(
        "mysql+pymysql://root@127.0.0.1:3306/attendance",
        pattern=r"^mysql\+pymysql://",
        description="SQLAlchemy URL of the MySQL/MariaDB database",
    )


def redact(value: str) -> str:
    """The URL with its password replaced, fit for logs and --check-config."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


S = TypeVar("S", bound=BaseSettings)


def describe(settings: BaseSettings) -> str:
    lines = []
    for name, value in settings.model_dump().items():
        shown: Any = redact(value) if isinstance(value, str) and "://" in value else value
        lines.append(f"{name.upper()}={shown}")
    return "\n".join(lines)


def load_settings(cls: type[S], argv: list[str] | None = None) -> S:
    """Read the settings from the environment; exit with one clear line per bad value.

    With `--check-config` in argv, print the settings (passwords redacted) and exit 0.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = cls()
    except ValidationError as error:
        _exit_invalid(error)
    if "--check-config" in argv:
        sys.stdout.write(describe(settings) + "\n")
        raise SystemExit(0)
    return settings


def _exit_invalid(error: ValidationError) -> NoReturn:
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper()
        given = problem.get("input")
        sys.stderr.write(f"invalid setting {name}={given!r}: {problem['msg']}\n")
    raise SystemExit(2)
