"""The API client's two kinds of failure, and its reading of the answers (httpx.MockTransport: no network)."""

import httpx
import pytest

from services.web.api_client import ApiClient, ApiRefusedError, ApiUnreachableError


def client(handler) -> ApiClient:  # type: ignore[no-untyped-def]
    return ApiClient("http://api.test:8000/", transport=httpx.MockTransport(handler))


def test_no_answer_says_where_the_api_was_expected() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(
        ApiUnreachableError, match=r"API unreachable at http://api.test:8000 \(Connection refused\)"
    ):
        client(refuse).students()


def test_an_error_answer_carries_its_detail() -> None:
    api = client(lambda request: httpx.Response(409, json={"detail": "student number S1 is already taken"}))
    with pytest.raises(ApiRefusedError) as raised:
        api.create_student("S1", "Ada")
    assert (raised.value.status, raised.value.detail) == (409, "student number S1 is already taken")


def test_validation_errors_and_non_json_errors_read_well() -> None:
    api = client(lambda request: httpx.Response(422, json={"detail": [{"msg": "field required"}]}))
    with pytest.raises(ApiRefusedError, match="field required"):
        api.create_student("", "")
    api = client(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(ApiRefusedError, match="502: <html>Bad gateway"):
        api.students()


def test_refused_photos_are_an_answer_with_a_reason_each() -> None:
    body = {
        "detail": "noise.jpg: no face found",
        "accepted": [{"filename": "me.jpg", "face_px": 180}],
        "rejected": [{"filename": "noise.jpg", "reason": "no face found"}],
        "photo_count": 1,
    }
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(422, json=body)

    upload = client(answer).add_photos(3, [("me.jpg", b"1", "image/jpeg"), ("noise.jpg", b"2", "image/jpeg")])
    assert [(o.filename, o.accepted, o.reason) for o in upload.outcomes] == [
        ("me.jpg", True, ""),
        ("noise.jpg", False, "no face found"),
    ]
    assert upload.photo_count == 1
    assert seen[0].url.path == "/students/3/photos"
    assert b'name="photos"; filename="noise.jpg"' in seen[0].read()


def test_a_422_without_photo_results_is_an_error() -> None:
    api = client(lambda request: httpx.Response(422, json={"detail": [{"msg": "Field required"}]}))
    with pytest.raises(ApiRefusedError, match="Field required"):
        api.add_photos(3, [("a.jpg", b"1", "image/jpeg")])


def test_csv_download_keeps_only_a_safe_file_name() -> None:
    def csv(request: httpx.Request) -> httpx.Response:
        headers = {"content-disposition": 'attachment; filename="../../etc/x\r.csv"'}
        return httpx.Response(200, content=b"a,b\n", headers=headers)

    download = client(csv).session_csv(5)
    assert download.content == b"a,b\n"
    assert download.filename == "_.._etc_x_.csv"
    plain = client(lambda request: httpx.Response(200, content=b"")).session_csv(5)
    assert plain.filename == "session-5-attendance.csv"
