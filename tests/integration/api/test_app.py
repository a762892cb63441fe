"""The app as a whole: health, error format, OpenAPI docs, settings, and the real server process."""

import socket
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from harness.paths import ROOT
from harness.processes import ServiceProcess, wait_until
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, check_response

pytestmark = pytest.mark.integration

# The contract's routes (docs/api-contract.md), as OpenAPI lists them.
CONTRACT = {
    ("get", "/health"),
    ("post", "/students"),
    ("get", "/students"),
    ("get", "/students/{student_id}"),
    ("patch", "/students/{student_id}"),
    ("delete", "/students/{student_id}"),
    ("post", "/students/{student_id}/photos"),
    ("get", "/cameras"),
    ("post", "/courses"),
    ("get", "/courses"),
    ("put", "/courses/{course_id}/students"),
    ("get", "/sessions"),
    ("get", "/sessions/current"),
    ("post", "/sessions"),
    ("get", "/sessions/{session_id}"),
    ("get", "/sessions/{session_id}/attendance"),
    ("get", "/attendance"),
    ("get", "/students/{student_id}/attendance"),
    ("get", "/sessions/{session_id}/attendance.csv"),
    ("get", "/attendance.csv"),
    # docs/auth-contract.md
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/auth/me"),
    ("get", "/users"),
    ("post", "/users"),
    ("patch", "/users/{user_id}"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{token_id}"),
    ("put", "/courses/{course_id}/teachers"),
    ("get", "/audit"),
}


def test_health_is_ok_with_the_database_and_the_broker(broker_client: TestClient) -> None:
    response = broker_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_names_the_broker_when_it_is_down(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "the broker cannot be reached",
        "status": "unavailable",
        "database": "ok",
        "broker": "unavailable",
    }


def test_a_missing_database_gives_503_json_not_a_trace() -> None:
    settings = ApiSettings(
        database_url="mysql+pymysql://root@127.0.0.1:3306/no_such_database_here", amqp_url=BROKER_DOWN_URL
    )
    with TestClient(create_app(settings)) as client:
        client.event_hooks["response"].append(check_response)
        # Checking the token needs the database too: 503, not a 401 that would send someone to sign in.
        response = client.get("/students", headers={"Authorization": "Bearer some-token"})
        assert response.status_code == 503
        assert response.json()["detail"] == "the database is unavailable; try again shortly"
        health = client.get("/health").json()
        assert (health["database"], health["broker"]) == ("unavailable", "unavailable")
        assert health["detail"] == "the database and the broker cannot be reached"


def test_unknown_routes_and_methods_get_json_sentences(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "there is no /nowhere here (the API is described at /docs)"}
    response = client.put("/students")
    assert response.status_code == 405
    assert response.json() == {"detail": "PUT is not allowed on /students"}


def test_an_unexpected_error_is_a_json_500_without_internals(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, raise_server_exceptions=False)

    def broken() -> None:
        raise RuntimeError("secret internals")

    client.app.add_api_route("/broken", broken)
    response = client.get("/broken")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["detail"].startswith("the server failed to handle this request")


def test_a_bad_query_is_a_500_not_passed_off_as_an_outage(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, raise_server_exceptions=False)
    engine = client.app.state.context.engine

    def bad_query() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT no_such_column FROM students"))

    client.app.add_api_route("/bad-query", bad_query)
    response = client.get("/bad-query")
    assert response.status_code == 500
    assert "no_such_column" not in response.text


def test_the_openapi_docs_describe_every_route_of_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Attendance API"
    assert spec["info"]["description"]
    routes = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert routes >= CONTRACT
    assert all(operation["tags"] for item in spec["paths"].values() for operation in item.values())
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_check_config_prints_the_settings_and_bad_ones_are_refused() -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "mysql+pymysql://api:s3cret@db:3306/attendance"}
    shown = subprocess.run(
        [sys.executable, "-m", "services.api", "--check-config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "API_PORT=8000" in shown.stdout
    assert "API_MAX_PHOTO_BYTES=10485760" in shown.stdout
    assert "s3cret" not in shown.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "services.api", "--check-config"],
        cwd=ROOT,
        env={**env, "API_MAX_PHOTO_BYTES": "2000", "API_MAX_REQUEST_BYTES": "1000"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "API_MAX_REQUEST_BYTES" in refused.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_server_runs_answers_and_stops_on_sigterm(
    database_url: str, amqp_url: str, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    server = ServiceProcess(
        "services.api",
        {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "API_HOST": "127.0.0.1", "API_PORT": str(port)},
        f"{request.node.name}-api",
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 60, "the API to answer /health")
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert "listening on 127.0.0.1" in server.log()


def test_a_405_names_every_method_the_path_serves(client: TestClient) -> None:
    # Found by schemathesis: Starlette named only the first route's methods (GET and POST /students
    # are two routes), so `Allow` said POST alone.
    response = client.options("/students")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert client.put("/students/1/photos").headers["Allow"] == "POST"


def test_a_path_that_only_looks_like_a_students_row_is_not_one(client: TestClient) -> None:
    # Found by schemathesis: PUT .../attendance/history reached PUT .../attendance/{student_id}
    # with the student id "history" (422), though that path serves GET alone.
    response = client.put("/sessions/1/attendance/history", json={"status": "present", "reason": "r"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert client.get("/sessions/1/attendance/abc").status_code == 404
    assert client.get("/sessions/1/attendance/7").json()["detail"] == "session 1 does not exist"


def test_a_body_that_is_not_utf8_is_a_documented_400(client: TestClient) -> None:
    response = client.post(
        "/students", content=b"\x80 not utf-8", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("the request body cannot be read")
    spec = client.get("/openapi.json").json()
    assert {"400", "413", "503"} <= set(spec["paths"]["/students"]["post"]["responses"])


@pytest.mark.parametrize(
    ("path", "params"),
    [("/sessions", {"date": "0"}), ("/attendance", {"date": "20240902"}), ("/attendance.csv", {"date": "1"})],
)
def test_a_day_must_be_written_as_a_day(client: TestClient, path: str, params: dict[str, str]) -> None:
    # Found by schemathesis: "0" was read as 1970-01-01 (seconds since 1970).
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.json()["detail"] == "date: a day is written YYYY-MM-DD"


def test_a_moment_must_be_written_in_iso_8601(client: TestClient) -> None:
    body = {"name": "Maths", "camera_id": "room-1", "starts_at": 0, "ends_at": "2000-01-01T00:00:00Z"}
    response = client.post("/sessions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("starts_at: a moment is written in ISO 8601")


def test_every_422_is_documented_with_its_real_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    refs = {
        operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        for item in spec["paths"].values()
        for operation in item.values()
        if "422" in operation["responses"]
    }
    assert refs <= {
        "#/components/schemas/ValidationErrorOut",
        "#/components/schemas/ErrorOut",
        "#/components/schemas/PhotoRefusedOut",
        "#/components/schemas/ImportRefusedOut",
    }
    response = client.post("/students", json={})
    assert set(response.json()) == {"detail", "errors"}
    # A roster import without its CSV: the schema's 422, as ImportRefusedOut allows.
    missing = client.post("/imports", files=[("photos", ("p.zip", b"PK", "application/zip"))])
    assert missing.status_code == 422
    assert set(missing.json()) == {"detail", "errors"}
    assert missing.json()["detail"] == "roster: Field required"


def test_every_protected_route_documents_401_and_403(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if (method, path) in {("get", "/health"), ("post", "/auth/login")}:
                continue
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
    assert "429" in spec["paths"]["/auth/login"]["post"]["responses"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/students", {"student_number": "S1", "name": "Ada", "consent": 0}, "consent"),
        ("/students", {"student_number": "S1", "name": "Ada", "consent": "yes"}, "consent"),
        ("/students/1/consent", {"given": 1}, "given"),
        ("/review/items/1/assign", {"student_id": 1, "enroll": "true"}, "enroll"),
    ],
)
def test_a_boolean_in_a_body_must_be_true_or_false(
    client: TestClient, path: str, body: dict[str, object], field: str
) -> None:
    # Found by schemathesis: `"consent": 0` was read as false (and 1 as consent given).
    method = client.put if path.endswith("/consent") else client.post
    response = method(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == f"{field}: Input should be a valid boolean"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/courses/1/students", {"student_ids": ["1"]}, "student_ids.0"),
        ("/courses/1/teachers", {"user_ids": [True]}, "user_ids.0"),
        ("/review/items/1/assign", {"student_id": "7"}, "student_id"),
    ],
)
def test_an_id_in_a_body_must_be_an_integer(
    client: TestClient, path: str, body: dict[str, object], field: str
) -> None:
    # Found while fixing the booleans above: lax pydantic read "1" and true as the id 1.
    method = client.put if path.startswith("/courses") else client.post
    response = method(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == f"{field}: Input should be a valid integer"


def test_a_whole_number_written_with_a_point_is_an_integer(client: TestClient) -> None:
    # Found by schemathesis: JSON Schema's integer includes 7.0, which a strict int refused.
    student = client.post("/students", json={"student_number": "S1", "name": "Ada"}).json()
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    response = client.put(f"/courses/{course['id']}/students", json={"student_ids": [float(student["id"])]})
    assert response.status_code == 200
    assert response.json()["student_ids"] == [student["id"]]
    response = client.put(f"/courses/{course['id']}/students", json={"student_ids": [1.5]})
    assert response.status_code == 422


def test_a_time_of_day_is_documented_as_the_api_reads_it(client: TestClient) -> None:
    # Found by schemathesis: documented as RFC 3339's `format: time` ("08:30:00Z", with an
    # offset), which the API refuses; it reads HH:MM or HH:MM:SS, local.
    spec = client.get("/openapi.json").json()
    starts = spec["components"]["schemas"]["SlotIn"]["properties"]["starts_time"]
    assert "format" not in starts and starts["pattern"] == "^([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d)?$"
    assert spec["components"]["schemas"]["SlotOut"]["properties"]["starts_time"] == {
        "type": "string",
        "title": "Starts Time",
    }
    term = client.post(
        "/terms", json={"name": "T", "first_day": "2026-09-01", "last_day": "2026-12-18"}
    ).json()
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    slot = {"term_id": term["id"], "camera_id": "room-1", "weekday": 0, "ends_time": "09:00"}
    for refused in ("08:30:00Z", "24:00", "8:30"):
        response = client.post(f"/courses/{course['id']}/slots", json={**slot, "starts_time": refused})
        assert response.status_code == 422, refused
        assert response.json()["detail"] == "starts_time: a time of day is written HH:MM, e.g. 08:30"
    response = client.post(f"/courses/{course['id']}/slots", json={**slot, "starts_time": "08:00:00"})
    assert response.status_code == 201
    assert response.json()["starts_time"] == "08:00"


@pytest.mark.parametrize("path", ["/terms", "/holidays"])
def test_a_day_in_a_body_must_be_written_as_a_day(client: TestClient, path: str) -> None:
    # Found by schemathesis: `"first_day": 0` made a term starting 1970-01-01.
    response = client.post(path, json={"name": "Autumn", "first_day": 0, "last_day": "2026-12-18"})
    assert response.status_code == 422
    assert response.json()["detail"] == "first_day: a day is written YYYY-MM-DD"
    assert (
        client.post(
            path, json={"name": "Autumn", "first_day": "2026-09-01", "last_day": "2026-12-18"}
        ).status_code
        == 201
    )
