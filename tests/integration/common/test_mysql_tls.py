"""MySQL over TLS for real: a throw-away MariaDB of its own (TLS on, a certificate of a test
CA naming "localhost", `require_secure_transport`), reached the way the services reach it
(services/common/db.py, `create_engine` with DATABASE_CA_FILE)."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from services.common.db import create_engine
from services.common.migrations import available, migrate
from services.common.settings import DatabaseSettings
from tests.support.tls import Certificates, make_certificates

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
DATABASE, USER, PASSWORD = "attendance_tls", "attendance_tls", "tls-test-password"


@dataclass(frozen=True)
class TlsServer:
    port: int
    socket: Path
    certificates: Certificates

    def url(self, host: str) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@{host}:{self.port}/{DATABASE}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if not (Path(MARIADBD).exists() and Path(INSTALL_DB).exists()):
        pytest.skip(f"no MariaDB server here ({MARIADBD}, {INSTALL_DB}) to run with TLS")
    root = tmp_path_factory.mktemp("mariadb-tls")
    certificates = make_certificates(root / "certs", "localhost")
    datadir, sock, port = root / "data", root / "mysqld.sock", free_port()
    subprocess.run(
        [INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    log = root / "mariadbd.log"
    server = subprocess.Popen(
        [MARIADBD, "--no-defaults", f"--datadir={datadir}", "--user=root", f"--port={port}",
         f"--socket={sock}", f"--pid-file={root / 'mariadbd.pid'}", f"--log-error={log}",
         "--skip-networking=0", "--bind-address=127.0.0.1", "--skip-name-resolve",
         f"--ssl-ca={certificates.ca_file}", f"--ssl-cert={certificates.cert_file}",
         f"--ssl-key={certificates.key_file}", "--require-secure-transport=ON",
         "--innodb-buffer-pool-size=16M", "--skip-log-bin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        admin = None
        deadline = time.monotonic() + 30
        while admin is None:
            if server.poll() is not None:
                pytest.fail(f"mariadbd exited ({server.returncode}): {log.read_text()[-2000:]}")
            try:  # the unix socket counts as secure transport: root needs no TLS here
                admin = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mariadbd did not accept connections: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{DATABASE}`")
            cursor.execute(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
            cursor.execute(f"GRANT ALL ON `{DATABASE}`.* TO '{USER}'@'127.0.0.1'")
        admin.close()
        yield TlsServer(port, sock, certificates)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def status(engine: sa.Engine, name: str) -> str:
    with engine.connect() as connection:
        return str(connection.execute(sa.text(f"SHOW SESSION STATUS LIKE '{name}'")).one()[1])


def test_with_the_ca_file_the_services_connect_over_verified_tls_and_migrations_apply(
    tls_server: TlsServer,
) -> None:
    settings = DatabaseSettings(
        database_url=tls_server.url("localhost"), database_ca_file=tls_server.certificates.ca_file
    )
    # The migrator verifies the server too (DATABASE_CA_FILE), as `python -m services.migrate`
    # and db_grants pass it.
    applied = migrate(settings.database_url, ca_file=settings.database_ca_file)
    assert [m.version for m in applied] == [m.version for m in available()]
    engine = create_engine(settings)
    try:
        assert status(engine, "Ssl_cipher") != ""
        assert status(engine, "Ssl_version") in ("TLSv1.2", "TLSv1.3")
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version FROM schema_migrations")).scalars()
            assert sorted(versions) == [m.version for m in available()]
    finally:
        engine.dispose()


def test_a_server_certificate_of_another_ca_is_refused(tls_server: TlsServer, tmp_path: Path) -> None:
    stranger = make_certificates(tmp_path / "stranger", "localhost", ca_name="someone else's CA")
    engine = create_engine(
        DatabaseSettings(database_url=tls_server.url("localhost"), database_ca_file=stranger.ca_file)
    )
    with pytest.raises(sa.exc.OperationalError, match="CERTIFICATE_VERIFY_FAILED"), engine.connect():
        pass
    engine.dispose()


def test_the_migrator_refuses_a_server_of_another_ca(tls_server: TlsServer, tmp_path: Path) -> None:
    stranger = make_certificates(tmp_path / "stranger", "localhost", ca_name="someone else's CA")
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        migrate(tls_server.url("localhost"), ca_file=stranger.ca_file)


def test_a_certificate_for_another_name_is_refused(tls_server: TlsServer) -> None:
    # The same server as 127.0.0.1: its certificate names "localhost" only.
    engine = create_engine(
        DatabaseSettings(
            database_url=tls_server.url("127.0.0.1"), database_ca_file=tls_server.certificates.ca_file
        )
    )
    with pytest.raises(sa.exc.OperationalError, match="IP address mismatch"), engine.connect():
        pass
    engine.dispose()


def test_the_server_refuses_plain_text(tls_server: TlsServer) -> None:
    """The server side is real: a client without TLS is turned away (require_secure_transport;
    MariaDB 10.11 answers "access denied"), the same login over TLS gets in."""
    login = {"host": "127.0.0.1", "port": tls_server.port, "user": USER, "password": PASSWORD}
    with pytest.raises(pymysql.err.OperationalError, match="Access denied") as refused:
        pymysql.connect(**login, ssl_disabled=True)
    assert refused.value.args[0] == 1045
    over_tls = pymysql.connect(**login, ssl_ca=str(tls_server.certificates.ca_file))
    try:
        with over_tls.cursor() as cursor:
            cursor.execute("SHOW GLOBAL VARIABLES LIKE 'require_secure_transport'")
            assert cursor.fetchone() == ("require_secure_transport", "ON")
    finally:
        over_tls.close()


def test_without_the_ca_file_tls_is_used_but_not_verified(tls_server: TlsServer) -> None:
    """Unset DATABASE_CA_FILE: PyMySQL's default takes the TLS offered, trusting any certificate
    (this one's CA is nowhere in the system's store), as the setting's help says."""
    engine = create_engine(DatabaseSettings(database_url=tls_server.url("127.0.0.1")))
    try:
        assert status(engine, "Ssl_version") in ("TLSv1.2", "TLSv1.3")
    finally:
        engine.dispose()
