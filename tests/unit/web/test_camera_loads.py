"""The dashboard's per-camera load: the board's rates plus the below-average flag."""

from datetime import UTC, datetime, timedelta

from services.common.messages import CameraLoad, utc_now
from services.web.camera_loads import CameraLoads, deliver_load
from services.web.context import EXTENSION
from tests.unit.web.fakes import fake_api, make_app, signed_in_client

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def report(camera: str, processed: int, received: int | None = None, at: datetime = NOW) -> CameraLoad:
    received = processed if received is None else received
    return CameraLoad(
        camera_id=camera,
        worker="w1",
        sent_at=at,
        interval_s=5.0,
        received=received,
        processed=processed,
        dropped=received - processed,
        busy_s=0.025 * processed,
    )


def test_offered_processed_and_under_served_per_camera() -> None:
    loads = CameraLoads()
    loads.add(report("camera-1", processed=25))  # 5/s of 5/s offered
    loads.add(report("camera-2", processed=10, received=25))  # 2/s of 5/s: under half offered
    by_camera = {row["camera_id"]: row for row in loads.snapshot(NOW)}
    assert by_camera["camera-1"]["offered_per_s"] == 5.0
    assert by_camera["camera-1"]["processed_per_s"] == 5.0
    assert by_camera["camera-1"]["under_served"] is False
    assert by_camera["camera-2"]["processed_per_s"] == 2.0
    assert by_camera["camera-2"]["under_served"] is True
    assert by_camera["camera-1"]["workers"] == ["w1"]


def test_a_camera_below_half_the_average_is_under_served_even_if_offered_little() -> None:
    loads = CameraLoads()
    for camera in ("camera-1", "camera-2", "camera-3"):
        loads.add(report(camera, processed=50))  # 10/s each
    loads.add(report("camera-4", processed=5))  # 1/s, all it was offered, but far below the rest
    by_camera = {row["camera_id"]: row for row in loads.snapshot(NOW)}
    assert by_camera["camera-4"]["under_served"] is True
    assert not any(by_camera[c]["under_served"] for c in ("camera-1", "camera-2", "camera-3"))


def test_old_reports_leave_the_window_and_bad_bodies_are_dropped() -> None:
    loads = CameraLoads()
    loads.add(report("camera-1", processed=25, at=NOW - timedelta(seconds=120)))
    assert loads.snapshot(NOW) == []
    assert deliver_load(loads, b"{not json") is False
    assert deliver_load(loads, report("camera-1", processed=5).model_dump_json().encode()) is True
    assert [row["camera_id"] for row in loads.snapshot(NOW)] == ["camera-1"]


def test_the_dashboard_shows_the_load_to_signed_in_people_only() -> None:
    app = make_app(fake_api())
    loads: CameraLoads = app.extensions[EXTENSION].camera_loads
    loads.add(report("camera-1", processed=25, at=utc_now()))
    loads.add(report("camera-2", processed=5, received=25, at=utc_now()))
    assert app.test_client().get("/cameras/load.json").status_code in (302, 401)
    client = signed_in_client(app)
    cameras = client.get("/cameras/load.json").get_json()["cameras"]
    assert [(c["camera_id"], c["under_served"]) for c in cameras] == [("camera-1", False), ("camera-2", True)]
    page = client.get("/cameras/load").get_data(as_text=True)
    assert '<tr data-camera="camera-2" class="under-served">' in page
    assert '<tr data-camera="camera-1">' in page
