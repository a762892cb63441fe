"""Run the whole system as local processes, without Docker: `make run` (see README).

Prepares the database (creates it and applies db/migrations/; when DATABASE_URL's account may
create users, one MySQL user per service with exactly its privileges and a fresh random
password for this run, services/common/db_grants.py; likewise one broker user per service
on a local broker rabbitmqctl may manage) and the broker
topology (enabling RabbitMQ's consistent-hash exchange plugin on a local broker first, through
scripts/ensure_rabbitmq_plugins.sh), then starts the recorder, N recognizers, the API and the
dashboard, and capture when a source is given. A service that crashes is restarted with
backoff; Ctrl-C or SIGTERM stops them all cleanly (each finishes or requeues the message in hand).
"""

import argparse
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from services.common import db_grants, topology  # noqa: E402
from services.common.amqp import closing, connect, declare_topology  # noqa: E402
from services.common.amqp.migration import migrate as migrate_queues  # noqa: E402
from services.common.db import create_database  # noqa: E402
from services.common.logs import setup_logging  # noqa: E402
from services.common.settings import BrokerSettings, DatabaseSettings, redact  # noqa: E402

logger = logging.getLogger("run_local")


@dataclass
class Service:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True  # capture that reached the end of its file stays stopped
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env={**os.environ, **self.env}
        )
        logger.info("started %s (pid %d)", self.name, self.process.pid)


def load_dotenv(path: Path) -> None:
    """KEY=value lines of .env become defaults (the real environment wins)."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--recognizers",
        type=int,
        default=os.cpu_count() or 1,
        help="recognizer processes (default: one per core)",
    )
    parser.add_argument(
        "--source",
        default=os.environ.get("CAPTURE_SOURCE"),
        help="camera index, RTSP/HTTP URL, video file or image folder (default: $CAPTURE_SOURCE; "
        "none: no capture, e.g. when a kiosk or another machine sends frames)",
    )
    parser.add_argument("--no-api", action="store_true", help="do not start the API")
    parser.add_argument("--no-web", action="store_true", help="do not start the dashboard")
    return parser.parse_args()


LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def ensure_broker_plugins(amqp_url: str) -> None:
    """Frames are routed by the consistent-hash exchange (services/common/topology.py), a plugin
    RabbitMQ ships but leaves off: enable it on a broker of this machine. A broker elsewhere
    must have it enabled by its operator (declaring the topology then says so, clearly)."""
    host = urllib.parse.urlsplit(amqp_url).hostname or ""
    if host not in LOCAL_HOSTS:
        return
    if not (shutil.which("rabbitmq-plugins") or Path("/usr/sbin/rabbitmq-plugins").exists()):
        logger.warning(
            "rabbitmq-plugins not found: the broker must have rabbitmq_consistent_hash_exchange enabled"
        )
        return
    script = ROOT / "scripts" / "ensure_rabbitmq_plugins.sh"
    if subprocess.run([str(script)], check=False).returncode != 0:
        logger.error(
            "could not enable RabbitMQ's consistent-hash exchange plugin; run as root: "
            "rabbitmq-plugins enable rabbitmq_consistent_hash_exchange"
        )
        sys.exit(1)


def database_users(database_url: str) -> dict[str, str]:
    """Each database service's own DATABASE_URL: a MySQL user with exactly its privileges
    (db_grants) and a fresh random password for this run, when DATABASE_URL's account may
    create users; else {} (every service uses DATABASE_URL, and a warning says so)."""
    passwords = {service: secrets.token_hex(16) for service in db_grants.SERVICES}
    try:
        db_grants.apply(database_url, passwords, host="localhost" if _local(database_url) else "%")
    except pymysql.MySQLError as error:
        logger.warning(
            "every service uses DATABASE_URL's account: it may not create MySQL users (%s); "
            "run as root locally for one user per service",
            error.args[-1] if error.args else error,
        )
        return {}
    url = make_url(database_url)
    return {
        service: url.set(username=db_grants.USERNAMES[service], password=password).render_as_string(False)
        for service, password in passwords.items()
    }


def broker_users(amqp_url: str) -> dict[str, str]:
    """Each service's own AMQP_URL: a broker user `local-<service>` with exactly its permissions
    (topology.PERMISSIONS) and a fresh random password for this run, on a broker of this machine
    that rabbitmqctl may manage (root); else {} (every service uses AMQP_URL, a warning says so)."""
    parts = urllib.parse.urlsplit(amqp_url)
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if (parts.hostname or "") not in LOCAL_HOSTS or not Path(ctl).exists():
        logger.warning(
            "every service uses AMQP_URL's broker user: no local rabbitmqctl to add one per service"
        )
        return {}
    vhost = urllib.parse.unquote(parts.path.lstrip("/")) or "/"

    def run(*args: str, password: str | None = None) -> bool:
        # The password goes on stdin, never on a command line other users could read.
        done = subprocess.run(
            [ctl, *args], input=password, capture_output=True, text=True, timeout=60, check=False
        )
        return done.returncode == 0

    urls = {}
    for service in topology.SERVICES:
        user, password = f"local-{topology.broker_user(service)}", secrets.token_hex(16)
        made = run("add_user", user, password=password) or run("change_password", user, password=password)
        if not (made and run("set_permissions", "-p", vhost, user, *topology.PERMISSIONS[service])):
            logger.warning(
                "every service uses AMQP_URL's broker user: rabbitmqctl could not add %s (run as root)", user
            )
            return {}
        netloc = f"{user}:{password}@{parts.hostname}:{parts.port or 5672}"
        urls[service] = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return urls


def _local(database_url: str) -> bool:
    return make_url(database_url).host in {None, "localhost"}


def prepare() -> dict[str, dict[str, str]]:
    """The database and broker ready; each service's own DATABASE_URL and AMQP_URL (least
    privilege) where this machine lets us make them."""
    database_url = DatabaseSettings().database_url
    logger.info("database: %s (created with the schema if missing)", redact(database_url))
    create_database(database_url)
    databases = database_users(database_url)
    if databases:
        logger.info("MySQL: one user per service (%s)", ", ".join(db_grants.USERNAMES.values()))
    broker = BrokerSettings()
    ensure_broker_plugins(broker.amqp_url)
    # A broker from before the quorum queues still has classic ones: migrate them (messages
    # kept) while no service runs yet, or every service would stop on declaring them.
    with closing(connect(broker, "run_local")) as connection:
        migrated = migrate_queues(connection)
    if migrated:
        logger.info("broker: queues migrated to the topology's arguments: %s", migrated)
    declare_topology(broker, "run_local")
    logger.info("broker: %s (topology declared)", redact(broker.amqp_url))
    brokers = broker_users(broker.amqp_url)
    if brokers:
        logger.info("RabbitMQ: one user per service (local-<service>)")
    credentials: dict[str, dict[str, str]] = {}
    for service, url in databases.items():
        credentials.setdefault(service, {})["DATABASE_URL"] = url
    for service, url in brokers.items():
        credentials.setdefault(service, {})["AMQP_URL"] = url
    return credentials


def loopback_unless_set(variable: str) -> dict[str, str]:
    """{variable: 127.0.0.1} unless the user chose an address (an empty value is a choice too)."""
    return {} if variable in os.environ else {variable: "127.0.0.1"}


def services(args: argparse.Namespace, credentials: dict[str, dict[str, str]]) -> list[Service]:
    def own(service: str) -> dict[str, str]:
        return credentials.get(service, {})  # its DATABASE_URL and AMQP_URL, where made

    chosen = [Service("recorder", "services.recorder", own("recorder"))]
    chosen += [
        Service(
            f"recognizer-{n}",
            "services.recognizer",
            {"RECOGNIZER_WORKER_ID": f"local-{n}", **own("recognizer")},
        )
        for n in range(1, args.recognizers + 1)
    ]
    # On this machine only unless told otherwise (API_HOST/WEB_HOST in the environment or .env):
    # the settings' default 0.0.0.0 is for containers (issue 9, finding 14).
    if not args.no_api and (ROOT / "services" / "api" / "__main__.py").exists():
        chosen.append(Service("api", "services.api", {**loopback_unless_set("API_HOST"), **own("api")}))
    if not args.no_web and (ROOT / "services" / "web" / "__main__.py").exists():
        chosen.append(Service("web", "services.web", {**loopback_unless_set("WEB_HOST"), **own("web")}))
    if args.source:
        chosen.append(
            Service("capture", "services.capture", {"CAPTURE_SOURCE": args.source, **own("capture")})
        )
    return chosen


def supervise(running: list[Service], stopping: list[bool]) -> None:
    while not stopping[0]:
        now = time.monotonic()
        for service in running:
            process = service.process
            if process is None:
                if now >= service.next_start:
                    service.start()
                continue
            code = process.poll()
            if code is None:
                continue
            service.process = None
            if code == 0 and service.name == "capture":
                logger.info("capture finished its source; the other services keep running (Ctrl-C to stop)")
                service.next_start = float("inf")
                continue
            if code == 2:  # a settings error: restarting cannot help
                logger.error("%s refused its settings (see above); not restarting", service.name)
                service.next_start = float("inf")
                continue
            service.restarts += 1
            delay = min(30.0, 2.0 ** min(service.restarts, 5))
            logger.warning("%s exited with %d; restarting in %.0fs", service.name, code, delay)
            service.next_start = now + delay
        time.sleep(0.2)


def shutdown(running: list[Service]) -> None:
    for service in running:
        if service.process is not None and service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for service in running:
        if service.process is None:
            continue
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in time; killing it", service.name)
            service.process.kill()
    logger.info("all services stopped")


def main() -> None:
    load_dotenv(ROOT / ".env")
    args = parse_args()
    setup_logging("run_local", os.environ.get("LOG_LEVEL", "INFO"))
    running = services(args, prepare())
    stopping = [False]

    def stop(signum: int, _frame: object) -> None:
        logger.info("%s: stopping every service", signal.Signals(signum).name)
        stopping[0] = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for service in running:
        service.start()
    try:
        supervise(running, stopping)
    finally:
        shutdown(running)


if __name__ == "__main__":
    main()
