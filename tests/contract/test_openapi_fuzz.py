"""The OpenAPI document is a contract: schemathesis fuzzes every operation of the real API.

`python -m services.api` runs as a process on a fresh MariaDB database (as the API's own MySQL
user) and a fresh RabbitMQ vhost (so /health is 200 and any 5xx is a finding, not the setup).
The first admin is made with the documented command and signs in; schemathesis then sends
each operation valid and invalid requests and checks every answer (EXCLUDED_CHECKS says which
check does not run, and why): no 5xx, a status code the document lists for it, the documented
content type, headers and a body that fits the documented schema (errors included), nonsense
refused, a request without a token refused, an undocumented method a 405 with a true `Allow`.

Before the run the database gets one of everything (`seed`): students, a course with a
roster, a term, a holiday, a slot, sessions, a mark, review items with their crops, an import,
an API token; half the generated path ids are turned into theirs (1 to 3), so the fuzzer
reaches real objects and the code behind them, not only the 404 of an empty database.

The fuzzed document is built from `create_app`, so that pytest gets one test per operation
(xfail-able, reported by name); `test_the_live_document_is_the_one_fuzzed` proves it is the
very document the live server serves at /openapi.json.
"""

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import httpx
import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import schemathesis
import sqlalchemy as sa
from schemathesis.specs.openapi import checks as openapi_checks

from harness.paths import ARTIFACTS, ROOT
from harness.processes import ServiceProcess, free_port, wait_until
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from services.api.accounts.tokens import issue_session
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common.db import create_engine
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, TrackEvidence
from services.common.settings import DatabaseSettings
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.support.db_users import service_db_user

pytestmark = pytest.mark.contract

# For building the document only: nothing listens here.
BROKER_DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"
ADMIN = "fuzz-admin"
PASSWORD = "contract-fuzz-password"  # the test stack's own admin, made below

# A few examples per operation keep the run to minutes on a shared 2-core machine; derandomized,
# so a failure is found again by the next run, not by chance. CONTRACT_FUZZ_EXAMPLES=200 digs deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "12"))


def _document() -> dict[str, Any]:
    """The API's OpenAPI document as `create_app` builds it (no database or broker needed)."""
    settings = ApiSettings(
        database_url="mysql+pymysql://root@127.0.0.1:3306/unused", amqp_url=BROKER_DOWN_URL
    )
    app = create_app(settings)
    try:
        # Through JSON, as the server sends it (tuples become lists, and so on).
        document: dict[str, Any] = json.loads(json.dumps(app.openapi()))
        return document
    finally:
        app.state.context.engine.dispose()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))


@schema.hook
def flatmap_path_parameters(
    _context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The generated ids, or ids of what `seed` made (1 to 3): random ids are mostly large, and
    an operation on an object that does not exist stops at its 404."""
    if not path_parameters:
        return st.just(path_parameters)
    seeded = {
        name: abs(value) % 3 + 1 if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in path_parameters.items()
    }
    return st.sampled_from([path_parameters, seeded])


# Every built-in check runs (no 5xx; documented status codes, content types, headers, bodies;
# nonsense refused; a request without a token refused; an undocumented method 405 with a true
# `Allow`), but one: positive_data_acceptance wants every schema-valid request accepted, and
# the API rightly refuses some that the schema cannot tell apart (an end before its start, an
# empty CSV, a student that does not exist: documented 422s and 409s).
EXCLUDED_CHECKS: list[Any] = [openapi_checks.positive_data_acceptance]


@dataclass
class LiveApi:
    url: str
    engine: sa.Engine
    admin_id: int
    signed_in_token: str

    def fresh_admin_token(self) -> str:
        """A new session of the fuzzing admin, who is an enabled admin again first.

        The fuzzer may, as any admin may, sign its own session out (POST /auth/logout), demote
        or disable user 1 (PATCH /users/{id}, once it made another admin) or change its
        password: every case therefore starts with a session of its own instead of skipping
        those operations."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE users SET role = 'admin', disabled = 0 WHERE id = :id"), {"id": self.admin_id}
            )
            secret, _expires = issue_session(connection, self.admin_id, "admin", hours=1)
        return secret


# Where a case carries the admin's token; the test swaps it for a fresh session when it sends it.
TOKEN_PLACEHOLDER = "Bearer a-fresh-admin-session"


@schema.auth(refresh_interval=None)
class AdminToken:
    """Schemathesis's own auth hook rather than a header added to every request: schemathesis
    then leaves it out of the cases that test a request without a token (which the API must
    refuse, 401). It runs when the cases are built, some of them at collection, before the
    API runs: hence a placeholder, which the test replaces."""

    def get(self, _case: schemathesis.Case, _ctx: schemathesis.AuthContext) -> str:
        return TOKEN_PLACEHOLDER

    def set(self, case: schemathesis.Case, token: str, _ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = token


def _create_admin(database_url: str) -> None:
    """The documented way to the first admin: create-admin, its password from a file."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    password_file = ARTIFACTS / "contract-admin-password.txt"
    password_file.write_text(PASSWORD + "\n")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.api.accounts", "create-admin", "--username", ADMIN,
             "--display-name", "Fuzz Admin", "--password-file", str(password_file)],
            check=False, cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url}, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        password_file.unlink()
    assert done.returncode == 0, done.stdout + done.stderr


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return dict(response.json()) if response.content else {}


def seed(api: httpx.Client, engine: sa.Engine) -> None:
    """One of everything, made as programs and the recorder make them."""
    today = datetime.now(UTC).date()
    ada = _ok(api.post("/students", json={"student_number": "S001", "name": "Ada", "consent": True}))
    bob = _ok(api.post("/students", json={"student_number": "S002", "name": "Bob"}))
    course = _ok(api.post("/courses", json={"code": "M1", "name": "Maths"}))
    _ok(api.put(f"/courses/{course['id']}/students", json={"student_ids": [ada["id"], bob["id"]]}))
    teacher = _ok(
        api.post("/users", json={"username": "teacher", "display_name": "Tea Cher", "role": "teacher",
                                 "password": "a teacher password"})
    )  # fmt: skip
    _ok(api.put(f"/courses/{course['id']}/teachers", json={"user_ids": [teacher["id"]]}))
    first, last = today - timedelta(days=30), today + timedelta(days=60)
    term = _ok(api.post("/terms", json={"name": "Autumn", "first_day": str(first), "last_day": str(last)}))
    holiday = today + timedelta(days=20)
    _ok(api.post("/holidays", json={"name": "Break", "first_day": str(holiday), "last_day": str(holiday)}))
    slot = {"term_id": term["id"], "camera_id": "room-2", "weekday": (today.weekday() + 1) % 7,
            "starts_time": "08:00", "ends_time": "09:00"}  # fmt: skip
    _ok(api.post(f"/courses/{course['id']}/slots", json=slot))
    now = datetime.now(UTC)
    session = _ok(
        api.post("/sessions", json={"name": "Maths", "camera_id": "room-1", "course_id": course["id"],
                                    "starts_at": (now - timedelta(hours=1)).isoformat(),
                                    "ends_at": (now + timedelta(hours=1)).isoformat()})
    )  # fmt: skip
    mark = {"status": "present", "reason": "seen at the door"}
    _ok(api.put(f"/sessions/{session['id']}/attendance/{bob['id']}", json=mark))
    _review_items(engine, now, ada)
    roster = "student_number,name,courses,consent\nS003,Cleo,M1,yes\nS001,Ada Lovelace,,\n"
    _ok(api.post("/imports", files=[("roster", ("roster.csv", roster.encode(), "text/csv"))]))
    _ok(api.post("/tokens", json={"name": "nightly export", "role": "viewer"}))


def _review_items(engine: sa.Engine, now: datetime, student: dict[str, Any]) -> None:
    """What the recorder keeps of a session's faces: an unknown track and one named on thin
    evidence (which marks the student), each with a crop."""
    encoded, jpeg = cv2.imencode(".jpg", np.full((96, 96, 3), 128, dtype=np.uint8))
    assert encoded
    crop = jpeg.tobytes()
    common: dict[str, Any] = {
        "camera_id": "room-1", "frame_seq": 1, "captured_at": now - timedelta(minutes=5),
        "box": FaceBox(top=0, right=90, bottom=90, left=0), "worker": "w", "crop": crop,
    }  # fmt: skip
    evidence = TrackEvidence(
        fresh=4, agreeing=3, best_distance=0.45, mean_distance=0.47, margin=0.05, tier="check"
    )
    AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy()).record(
        [
            FaceUnknown(**common, track_id=uuid.uuid4(), best_distance=0.66),
            FaceRecognized(
                **common, track_id=uuid.uuid4(), student_id=student["id"], student_number=student["student_number"],
                student_name=student["name"], distance=0.47, evidence=evidence,
            ),
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def live_api() -> Iterator[LiveApi]:
    with ExitStack() as cleanup:
        database_url = fresh_database()
        cleanup.callback(remove_database, database_url)
        # The API connects as its own MySQL user, with compose's privileges (db_grants): a grant
        # it lacks is a 500 the fuzzer finds. The owner's URL sets up what no route makes.
        api_database_url = cleanup.enter_context(service_db_user(database_url, "api"))
        vhost, amqp_url = fresh_vhost()
        cleanup.callback(remove_vhost, vhost)
        engine = create_engine(DatabaseSettings(database_url=database_url))
        cleanup.callback(engine.dispose)
        port = free_port()
        env = {"DATABASE_URL": api_database_url, "AMQP_URL": amqp_url, "API_HOST": "127.0.0.1",
               "API_PORT": str(port), "LOG_LEVEL": "INFO"}  # fmt: skip
        server = ServiceProcess("services.api", env, "contract-fuzz-api")
        stopped: list[int] = []
        cleanup.callback(lambda: stopped.append(server.stop()))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if server.process.poll() is not None:
                raise AssertionError(
                    f"the API exited with {server.process.returncode}:\n{server.log()[-3000:]}"
                )
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, 60, "the API to answer /health")
        _create_admin(api_database_url)
        login = httpx.post(f"{url}/auth/login", json={"username": ADMIN, "password": PASSWORD}, timeout=30)
        assert login.status_code == 200, login.text
        token = str(login.json()["token"])
        with engine.connect() as connection:
            admin_id = connection.execute(
                sa.text("SELECT id FROM users WHERE username = :u"), {"u": ADMIN}
            ).scalar_one()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            seed(api, engine)
        yield LiveApi(url, engine, int(admin_id), token)
    assert stopped == [0], server.log()[-3000:]


def test_the_live_document_is_the_one_fuzzed(live_api: LiveApi) -> None:
    response = httpx.get(
        f"{live_api.url}/openapi.json", headers={"Authorization": f"Bearer {live_api.signed_in_token}"}
    )
    assert response.status_code == 200
    assert response.json() == DOCUMENT


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_keeps_the_contract(case: schemathesis.Case, live_api: LiveApi) -> None:
    if case.headers and case.headers.get("Authorization") == TOKEN_PLACEHOLDER:
        case.headers["Authorization"] = f"Bearer {live_api.fresh_admin_token()}"
    case.call_and_validate(base_url=live_api.url, excluded_checks=EXCLUDED_CHECKS, timeout=30)
