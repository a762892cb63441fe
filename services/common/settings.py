"""Settings every service shares, and how they are loaded, checked and shown.

Each service has one settings class built from these mixins; every field is an environment
variable of the same name in upper case (documented in `.env.example`).
"""

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    FilePath,
    ValidationError,
    ValidationInfo,
    field_validator,
)
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


def _empty_is_unset(value: Any) -> Any:
    # `VAR=` in an env file or compose's `VAR: ""` means "not set", not "the path ''".
    return None if value == "" else value


# A file that must exist when the service starts (a CA certificate), or nothing.
OptionalFile = Annotated[FilePath | None, BeforeValidator(_empty_is_unset)]


class BrokerSettings(BaseSettings):
    # One URL, or one per node of a cluster, comma-separated: connections try them in turn
    # (services/common/amqp/connection.py), so a service reconnects to a node still up.
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        pattern=r"^amqps?://",
        description="RabbitMQ URL, or the URLs of a cluster's nodes separated by commas",
    )
    # Seconds; a missed heartbeat tells both sides that the peer is gone.
    amqp_heartbeat_s: int = Field(30, ge=5, le=600)
    # With an amqps:// URL (a worker on another machine): the CA certificate (PEM) the broker's
    # certificate must chain to; unset, the system's CAs. The certificate and the host name of
    # the URL are always verified (services/common/amqp/connection.py, tls_options).
    amqp_ca_file: OptionalFile = None

    @field_validator("amqp_url")
    @classmethod
    def _every_url_is_amqp(cls, value: str) -> str:
        schemes = {url.split("://", 1)[0] for url in split_urls(value)}
        if not schemes <= {"amqp", "amqps"} or len(schemes) != 1:
            raise ValueError("every URL must start with amqp://, or every one with amqps://")
        return value

    @property
    def amqp_urls(self) -> list[str]:
        """The broker's URLs: one, or one per node of a cluster."""
        return split_urls(self.amqp_url)

    @field_validator("amqp_ca_file")
    @classmethod
    def _ca_needs_amqps(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not str(info.data.get("amqp_url", "")).startswith("amqps://"):
            raise ValueError("a CA file is only used with TLS: AMQP_URL must start with amqps://")
        return value


class DatabaseSettings(BaseSettings):
    database_url: str = Field(
        "mysql+pymysql://root@127.0.0.1:3306/attendance",
        pattern=r"^mysql\+pymysql://",
        description="SQLAlchemy URL of the MySQL/MariaDB database",
    )
    # Set (a worker on another machine): TLS is required, the server's certificate must chain
    # to this CA (PEM) and name the URL's host (services/common/db.py, tls_connect_args).
    # Unset: PyMySQL's default, TLS if the server offers it, unverified.
    database_ca_file: OptionalFile = None


class TimetableSettings(BaseSettings):
    # Days after today for which a course's weekly slots already have their sessions
    # (services/common/timetable.py): the API makes them when the timetable changes, the
    # recorder keeps the window filled as days pass.
    timetable_days_ahead: int = Field(14, ge=0, le=366)


# A parameter whose name contains one of these holds a secret (`pwd`, `Password`, `passwd`,
# `pass`, `token`, `api_key`, `auth`, `X-Amz-Signature`...): its value is masked.
_SECRET_NAME = re.compile(r"pass|pwd|token|key|auth|secret|credential|sig", re.IGNORECASE)
# `scheme://user:password@` whose password holds an unescaped / ? or # (urlsplit stops early).
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)(?P<password>.*)@(?=[^@]*$)")
MASK = "***"
# Several URLs in one value (AMQP_URL naming each node of a cluster): a comma before a scheme.
_URL_LIST = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (one URL is a list of one)."""
    return [url.strip() for url in _URL_LIST.split(value) if url.strip()]


def redact(value: str) -> str:
    """The URL with every secret in it masked, fit for logs, --check-config, heartbeats and the
    API: the password of `user:password@`, and the value of every query, fragment or path
    parameter with a secret-looking name (pwd, password, passwd, pass, token, key, auth...).
    The rest (scheme, host, path, other parameters) stays as it was, readable. A list of URLs
    (see `split_urls`) has each of them redacted."""
    urls = split_urls(value)
    if len(urls) > 1:
        return ",".join(redact(url) for url in urls)
    parts = urlsplit(value)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1))
    elif _USERINFO.match(value):
        return redact(_USERINFO.sub(rf"\g<head>{MASK}@", value, count=1))
    masked = parts._replace(
        path=_mask_parameters(parts.path, "/;&"),
        query=_mask_parameters(parts.query, "&;"),
        fragment=_mask_parameters(parts.fragment, "&;"),
    )
    # Nothing to hide: the value itself (urlunsplit would normalise what is not a URL).
    return value if masked == urlsplit(value) else urlunsplit(masked)


def _mask_parameters(text: str, separators: str) -> str:
    """`name=value` pieces between separators, the value masked when the name looks secret."""
    pieces = re.split(f"([{re.escape(separators)}])", text)
    for index, piece in enumerate(pieces):
        name, equals, secret = piece.partition("=")
        if equals and secret and _SECRET_NAME.search(unquote(name)):
            pieces[index] = f"{name}={MASK}"
    return "".join(pieces)


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
