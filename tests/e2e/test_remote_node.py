"""Workers on other machines (issue 11, item 3): a recognizer and a capture on "another
machine" (a network namespace, tests/support/netns.py) reach the central broker and database
only through the addresses forwarded to it, each as its node's own broker user (and the
recognizer as the recognizer's MySQL user, db_grants); the recorder stays on the central
machine. The shared clip's roll is the same as with local workers.

AMQP is TLS, as a node's is (docker-compose.node.yml): amqps:// to the central machine's name,
verified against AMQP_CA_FILE, with a real handshake in front of the shared broker (which has
no TLS listener: TlsForwarder). MySQL goes through a plain forwarder: the shared MariaDB has
TLS off (tests/integration/common/test_tls.py shows DATABASE_CA_FILE then refuses it)."""

import csv
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from harness.paths import ROOT
from harness.processes import ServiceProcess, wait_until
from harness.servers import frame_consumers, frames_waiting
from services.common import topology
from tests.e2e.test_clip_pipeline import ENROLLED
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user
from tests.support.db_users import service_db_user
from tests.support.netns import NETNS_ETC, Machine, NamespacesUnavailableError, machine
from tests.support.proxy import FlakyProxy, TlsForwarder
from tests.support.tls import Certificates, make_certificates

pytestmark = [pytest.mark.e2e, pytest.mark.faces]

NODE = "room-12"
CENTRAL = "central.test"  # the central machine's name, in its certificate and the node's /etc/hosts


@pytest.fixture
def remote() -> Iterator[Machine]:
    try:
        with machine(central_names=(CENTRAL,)) as other:
            yield other
    except NamespacesUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls", CENTRAL)


@dataclass
class Forwarders:
    """The central machine's broker (TLS) and database, as the other machine sees them:
    listening on this machine's end of the veth pair (the servers listen on loopback only)."""

    amqp: TlsForwarder
    mysql: FlakyProxy


@pytest.fixture
def forwarders(remote: Machine, certificates: Certificates) -> Iterator[Forwarders]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    amqp = TlsForwarder("127.0.0.1", 5672, context, listen_host=remote.host_address)
    mysql = FlakyProxy("127.0.0.1", 3306, listen_host=remote.host_address)
    yield Forwarders(amqp, mysql)
    amqp.close()
    mysql.close()


def via(url: str, port: int, host: str = CENTRAL, scheme: str | None = None) -> str:
    """`url` on the central machine's name and a forwarder's port (and another scheme)."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urllib.parse.urlunsplit(parts._replace(scheme=scheme or parts.scheme, netloc=netloc))


PROBE = """
import json, socket, sys
result = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        result[f"{host}:{port}"] = "open"
    except OSError as error:
        result[f"{host}:{port}"] = type(error).__name__
print(json.dumps(result))
"""


def probe(remote: Machine, targets: list[tuple[str, int]]) -> dict[str, str]:
    """Connect from the other machine to each target: "open", or the error's class."""
    done = remote.run(sys.executable, "-c", PROBE, json.dumps(targets))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_other_machine_reaches_the_central_servers_only_through_the_forwarders(
    remote: Machine, forwarders: Forwarders
) -> None:
    routes = remote.run("ip", "-4", "route").stdout.splitlines()
    assert len(routes) == 1 and "default" not in routes[0], routes  # its /30, nothing else
    assert remote.run("getent", "hosts", CENTRAL).stdout.split() == [remote.host_address, CENTRAL]
    amqp, mysql = forwarders.amqp, forwarders.mysql
    host = remote.host_address
    seen = probe(
        remote,
        [
            ("127.0.0.1", 5672),  # its own loopback: nothing there
            ("127.0.0.1", 3306),
            (host, 5672),  # the central machine, but its servers listen on loopback only
            (host, 3306),
            (host, amqp.port),
            (host, mysql.port),
        ],
    )
    assert seen == {
        "127.0.0.1:5672": "ConnectionRefusedError",
        "127.0.0.1:3306": "ConnectionRefusedError",
        f"{host}:5672": "ConnectionRefusedError",
        f"{host}:3306": "ConnectionRefusedError",
        f"{host}:{amqp.port}": "open",
        f"{host}:{mysql.port}": "open",
    }
    assert mysql.clients == [remote.address]  # from the other machine's address
    assert amqp.clients == []  # a bare TCP connection is no TLS handshake: nothing forwarded


def enroll_everyone(env: dict[str, str], faces_dir: Path) -> None:
    """As the clip pipeline's test does: the real command, with the students' consent."""
    for number, name in ENROLLED.items():
        photos = sorted((faces_dir / "people" / number).glob("*.jpg"))[:1]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.recognizer.enroll",
                "--number",
                number,
                "--name",
                name,
                "--consent",
                "test: consent form on file",
                *map(str, photos),
            ],
            cwd=ROOT,
            env={**env, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            timeout=120,
        )


def network_namespace(pid: int) -> str:
    return str(Path(f"/proc/{pid}/ns/net").readlink())


def broker_connections(amqp_url: str) -> list[tuple[str, str]]:
    """(user, peer host) of every client connection on the URL's vhost."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).path.lstrip("/"))
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "vhost", "user", "peer_host", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return [(row[1], row[2]) for row in rows if len(row) == 3 and row[0] == vhost]


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


def test_frames_reach_a_worker_on_another_machine_and_the_roll_is_complete(
    remote: Machine,
    forwarders: Forwarders,
    certificates: Certificates,
    database_url: str,
    amqp_url: str,
    engine: sa.Engine,
    processes: list[ServiceProcess],
    faces_dir: Path,
    tmp_path: Path,
) -> None:
    central = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "RECORDER_CSV_PATH": str(tmp_path / "att.csv"),
    }
    with service_db_user(database_url, "api") as api_db:
        enroll_everyone({**central, "DATABASE_URL": api_db}, faces_dir)
    broker = TestBroker(amqp_url)
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    summaries = broker.tap(topology.RECOGNIZER_EXCHANGE, "frame.analyzed.#")
    with (
        service_user(amqp_url, "recognizer", NODE) as recognizer_url,
        service_user(amqp_url, "capture", NODE) as capture_url,
        service_db_user(database_url, "recorder") as recorder_db,
        service_db_user(database_url, "recognizer") as recognizer_db,  # reads the gallery only
    ):
        processes.append(
            ServiceProcess("services.recorder", {**central, "DATABASE_URL": recorder_db}, "remote-recorder")
        )
        worker = ServiceProcess(
            "services.recognizer",
            {
                "AMQP_URL": via(recognizer_url, forwarders.amqp.port, scheme="amqps"),
                "AMQP_CA_FILE": str(certificates.ca_file),
                "DATABASE_URL": via(recognizer_db, forwarders.mysql.port),
                "RECOGNIZER_WORKER_ID": NODE,
            },
            "remote-recognizer",
            prefix=remote.prefix,
        )
        processes.append(worker)
        wait_until(lambda: frame_consumers(amqp_url) == 1, 90, "the remote recognizer")
        # `ip netns exec` execs the service: the process stop() signals is the recognizer, there.
        assert network_namespace(worker.process.pid) != network_namespace(os.getpid())
        capture = ServiceProcess(
            "services.capture",
            {
                "AMQP_URL": via(capture_url, forwarders.amqp.port, scheme="amqps"),
                "AMQP_CA_FILE": str(certificates.ca_file),
                "CAPTURE_SOURCE": str(faces_dir / "video" / "short_hamilton_clip.mp4"),
                "CAPTURE_FPS": "0",
                "CAPTURE_PACE": "fast",
                "CAMERA_ID": "stage",
            },
            "remote-capture",
            prefix=remote.prefix,
        )
        processes.append(capture)
        assert capture.wait(timeout_s=900) == 0, capture.log()[-2000:]
        assert "275 frames published" in capture.log()
        wait_until(lambda: frames_waiting(amqp_url) == 0, 60, "the recognizer to finish")
        wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 60, "the recorder to finish")
        # The node's user is the one connected (the broker sees the forwarder's address, but the
        # forwarder saw only the other machine's: checked below).
        users = {user.rsplit("-", 1)[0] for user, _ in broker_connections(amqp_url)}
        assert {f"test-{topology.node_user('recognizer', NODE)}"} <= users
        analyzed: list[dict[str, Any]] = broker.drain(summaries)
        received = broker.drain(events)
        broker.close()
        for process in processes:
            assert process.stop() == 0, process.log()[-2000:]

    # Only the other machine connected, and every AMQP connection completed a TLS handshake
    # with the central certificate (TlsForwarder forwards nothing else).
    assert set(forwarders.amqp.clients) == set(forwarders.mysql.clients) == {remote.address}
    assert {s["worker"] for s in analyzed} == {NODE}  # every frame went to the other machine
    assert len({s["frame_seq"] for s in analyzed}) == 275
    assert received and {e["worker"] for e in received} == {NODE}
    with engine.connect() as connection:
        marked = connection.execute(
            sa.text(
                "SELECT s.student_number, cs.camera_id FROM attendance a JOIN students s ON s.id = a.student_id "
                "JOIN class_sessions cs ON cs.id = a.session_id"
            )
        ).all()
        recognized = set(
            connection.execute(
                sa.text(
                    "SELECT DISTINCT s.student_number FROM identity_events e JOIN students s ON s.id = e.student_id"
                )
            ).scalars()
        )
    assert [tuple(row) for row in marked] == [("lin_manuel_miranda", "stage")]
    assert recognized == {"lin_manuel_miranda"}
    with (tmp_path / "att.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["student_number"], r["status"]) for r in rows] == [("lin_manuel_miranda", "present")]


def test_the_other_machine_is_gone_after_a_failing_test() -> None:
    """The namespace, its veth pair and its /etc/netns files go even when the test fails."""
    try:
        with pytest.raises(RuntimeError, match="the test failed"), machine(central_names=(CENTRAL,)) as other:
            assert other.run("ip", "-o", "link").returncode == 0
            raise RuntimeError("the test failed")
    except NamespacesUnavailableError as error:
        pytest.skip(str(error))
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    tag = other.namespace.removeprefix("att-")
    assert other.namespace not in namespaces
    assert tag not in links  # both ends of the pair
    assert (
        other.host_address
        not in subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    )
    assert not (NETNS_ETC / other.namespace).exists()
