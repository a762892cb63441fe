"""Per-camera offered and processed rates from the workers' load reports and capture's heartbeats."""

from datetime import UTC, datetime, timedelta

import pytest

from services.common.camera_load import CameraLoadBoard
from services.common.messages import CameraHeartbeat, CameraLoad

T0 = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def load(camera: str, at_s: float, received: int, processed: int, worker: str = "w1") -> CameraLoad:
    return CameraLoad(
        camera_id=camera,
        worker=worker,
        sent_at=T0 + timedelta(seconds=at_s),
        interval_s=5,
        received=received,
        processed=processed,
        dropped=received - processed,
        busy_s=processed * 0.025,
    )


def beat(camera: str, at_s: float, published: int) -> CameraHeartbeat:
    return CameraHeartbeat(
        camera_id=camera,
        camera_name=camera,
        source="test",
        sent_at=T0 + timedelta(seconds=at_s),
        frames_published=published,
        status="streaming",
    )


def test_rates_per_camera_and_the_under_served_flag() -> None:
    board = CameraLoadBoard(window_s=30)
    for at in (5, 10, 15, 20):
        board.add(load("door", at, received=25, processed=24))  # 5/s offered, 4.8/s processed
        board.add(load("hall", at, received=25, processed=10))  # 2/s of 5/s: under-served
    rates = board.rates(T0 + timedelta(seconds=20))
    door, hall = rates["door"], rates["hall"]
    assert (door.offered_per_s, door.processed_per_s, door.under_served) == (5.0, 4.8, False)
    assert (hall.offered_per_s, hall.processed_per_s, hall.under_served) == (5.0, 2.0, True)
    assert door.ms_per_frame == pytest.approx(25.0) and door.workers == ("w1",)
    assert hall.served_share == pytest.approx(0.4)


def test_a_camera_that_moved_to_another_worker_counts_both() -> None:
    board = CameraLoadBoard(window_s=30)
    board.add(load("door", 5, received=25, processed=25, worker="w1"))
    board.add(load("door", 10, received=25, processed=25, worker="w2"))
    rate = board.rates(T0 + timedelta(seconds=10))["door"]
    assert rate.workers == ("w1", "w2") and rate.processed_per_s == 5.0


def test_a_camera_no_worker_reports_is_offered_by_capture_and_under_served() -> None:
    board = CameraLoadBoard(window_s=30)
    board.add_heartbeat(beat("door", 0, 100))
    board.add_heartbeat(beat("door", 10, 150))
    rate = board.rates(T0 + timedelta(seconds=10))["door"]
    assert (rate.offered_per_s, rate.processed_per_s, rate.under_served) == (5.0, 0.0, True)


def test_old_reports_leave_the_window_and_a_capture_restart_resets_its_count() -> None:
    board = CameraLoadBoard(window_s=30)
    board.add(load("door", 5, received=25, processed=25))
    board.add_heartbeat(beat("door", 0, 500))
    board.add_heartbeat(beat("door", 40, 10))  # restarted
    board.add_heartbeat(beat("door", 45, 35))
    rate = board.rates(T0 + timedelta(seconds=45))["door"]
    assert rate.processed_per_s == 0.0 and rate.offered_per_s == 5.0 and rate.under_served
    assert board.rates(T0 + timedelta(seconds=100)) == {}


def test_the_threshold_is_a_setting() -> None:
    board = CameraLoadBoard(window_s=30, under_served_below=0.9)
    board.add(load("door", 5, received=25, processed=20))
    assert board.rates(T0 + timedelta(seconds=5))["door"].under_served
