"""The first admin: `python -m services.api.accounts create-admin` (docs/auth-contract.md).
There is no default account and no default password."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from harness.paths import ROOT
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient

pytestmark = pytest.mark.integration

PASSWORD = "the first admin's passphrase"


def create_admin(
    database_url: str, *args: str, password: str | None = PASSWORD, tmp_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    extra: list[str] = []
    if password is not None:
        assert tmp_path is not None
        secret = tmp_path / "password"
        secret.write_text(password + "\n")
        extra = ["--password-file", str(secret)]
    return subprocess.run(
        [sys.executable, "-m", "services.api.accounts", "create-admin", *args, *extra],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def users(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [(r.username, r.role) for r in connection.execute(sa.text("SELECT username, role FROM users"))]


def test_a_fresh_database_has_no_account_at_all(engine: sa.Engine) -> None:
    assert users(engine) == []


def test_the_first_admin_is_created_and_can_sign_in(
    database_url: str, engine: sa.Engine, make_client: MakeClient, tmp_path: Path
) -> None:
    done = create_admin(
        database_url, "--username", "ada", "--display-name", "Ada Lovelace", tmp_path=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "admin ada created" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert users(engine) == [("ada", "admin")]
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    client: TestClient = make_client(BROKER_DOWN_URL, role=None)
    response = client.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["user"]["display_name"] == "Ada Lovelace"
    token = response.json()["token"]
    audit = client.get("/audit", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert [(e["actor"], e["action"]) for e in audit] == [("command line", "user.create")]


def test_a_second_admin_is_refused_unless_asked_for(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    assert create_admin(database_url, "--username", "ada", tmp_path=tmp_path).returncode == 0
    refused = create_admin(database_url, "--username", "mallory", tmp_path=tmp_path)
    assert refused.returncode == 1
    assert "an admin already exists" in refused.stderr
    assert users(engine) == [("ada", "admin")]
    another = create_admin(database_url, "--username", "grace", "--another", tmp_path=tmp_path)
    assert another.returncode == 0, another.stderr
    taken = create_admin(database_url, "--username", "ADA", "--another", tmp_path=tmp_path)
    assert taken.returncode == 1
    assert "already taken" in taken.stderr


def test_there_is_no_default_password(database_url: str, engine: sa.Engine, tmp_path: Path) -> None:
    # No password file and no terminal to ask on: nothing is created with some default.
    without = create_admin(database_url, "--username", "ada", password=None)
    assert without.returncode == 1
    assert "no terminal to ask for the password: give --password-file" in without.stderr
    for weak in ("", "short"):
        refused = create_admin(database_url, "--username", "ada", password=weak, tmp_path=tmp_path)
        assert refused.returncode == 1
        assert "a password needs at least 12 characters" in refused.stderr
    assert users(engine) == []
