"""The audit log: who created, changed, exported or erased what, visible to admins only."""

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.conftest import SignIn
from tests.integration.api.helpers import new_student

pytestmark = pytest.mark.integration

ENTRY_KEYS = {"id", "at", "actor", "action", "target_type", "target_id", "detail"}


def entries(client: TestClient) -> list[dict[str, object]]:
    page = client.get("/audit", params={"page_size": 500}).json()
    items: list[dict[str, object]] = page["items"]
    assert page["total"] == len(items)
    return items


def test_creating_changing_exporting_and_erasing_are_audited(client: TestClient, sign_in: SignIn) -> None:
    student = new_student(client, "S001", "Ada Lovelace")
    client.patch(f"/students/{student['id']}", json={"name": "Ada King"})
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    client.put(f"/courses/{course['id']}/students", json={"student_ids": [student["id"]]})
    viewer = sign_in("viewer", "victor")
    assert viewer.get("/attendance.csv", params={"date": "2024-09-02"}).status_code == 200
    client.delete(f"/students/{student['id']}")

    found = entries(client)
    assert all(set(entry) == ENTRY_KEYS for entry in found)
    actions = [(e["action"], e["target_type"], e["target_id"]) for e in reversed(found)]
    sid, cid = str(student["id"]), str(course["id"])
    assert actions == [
        ("student.create", "student", sid),
        ("student.consent", "student", sid),
        ("student.change", "student", sid),
        ("course.create", "course", cid),
        ("course.roster", "course", cid),
        ("attendance.export", "day", "2024-09-02"),
        ("student.erase", "student", sid),
    ]
    by_action = {e["action"]: e for e in found}
    assert by_action["student.change"]["detail"] == "name"
    assert by_action["student.consent"]["detail"] == "given"
    assert str(by_action["student.create"]["actor"]).startswith("admin (user ")
    assert str(by_action["attendance.export"]["actor"]).startswith("victor (user ")
    # Personal data stays out of the log: it outlives an erasure.
    assert "Ada" not in str(found)


def test_accounts_and_tokens_are_audited_without_secrets(client: TestClient) -> None:
    password = "a long secret passphrase"
    user = client.post(
        "/users", json={"username": "grace", "display_name": "Grace", "role": "viewer", "password": password}
    ).json()
    client.patch(f"/users/{user['id']}", json={"role": "teacher", "password": "another long passphrase"})
    token = client.post("/tokens", json={"name": "export", "role": "viewer"}).json()
    client.delete(f"/tokens/{token['id']}")
    found = entries(client)
    assert [e["action"] for e in reversed(found)] == [
        "user.create",
        "user.change",
        "token.create",
        "token.revoke",
    ]
    change = next(e for e in found if e["action"] == "user.change")
    assert change["detail"] == "role: viewer -> teacher, password"
    text = str(found)
    assert password not in text and "another long" not in text and token["token"] not in text


def test_the_audit_log_is_paged_newest_first(client: TestClient) -> None:
    for number in range(3):
        new_student(client, f"S{number}", f"Student {number}", consent=False)
    page = client.get("/audit", params={"page": 2, "page_size": 2}).json()
    assert (page["total"], page["page"], page["page_size"], len(page["items"])) == (3, 2, 2, 1)
    assert page["items"][0]["action"] == "student.create"
    assert client.get("/audit", params={"page": 10**20}).status_code == 422
