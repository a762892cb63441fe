"""The worker's frame schedule: newest frame per camera, cameras in turn, no-drop frames in order."""

from datetime import UTC, datetime

from services.common import topology
from services.common.messages import CameraLoad, FrameCaptured
from services.common.transport import Delivery, Handled
from services.recognizer.scheduling import FrameScheduler, LoadReports, reporting

T0 = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
_tags = iter(range(1, 10**6))


def frame(camera: str, seq: int, droppable: bool = True) -> Delivery:
    meta = FrameCaptured(camera_id=camera, seq=seq, captured_at=T0, width=4, height=3, droppable=droppable)
    return Delivery(body=b"jpeg", routing_key=camera, headers=meta.to_headers(), delivery_tag=next(_tags))


def served(scheduler: FrameScheduler) -> list[tuple[str, int]]:
    order = []
    while (delivery := scheduler.next()) is not None:
        order.append((str(delivery.headers["camera_id"]), int(delivery.headers["seq"])))
    return order


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_only_the_newest_frame_of_a_camera_waits() -> None:
    scheduler = FrameScheduler()
    first, second, third = frame("a", 1), frame("a", 2), frame("a", 3)
    assert scheduler.offer(first) == []
    assert scheduler.offer(second) == [first]  # superseded: acked by the consumer, never analyzed
    assert scheduler.offer(third) == [second]
    assert served(scheduler) == [("a", 3)]
    assert scheduler.next() is None


def test_cameras_are_served_in_turn() -> None:
    scheduler = FrameScheduler()
    for delivery in (frame("a", 1), frame("b", 1), frame("c", 1)):
        scheduler.offer(delivery)
    assert scheduler.next().headers["camera_id"] == "a"  # type: ignore[union-attr]
    # While "a"'s frame was analyzed, each camera sent a newer one: "a" waits for b and c.
    for delivery in (frame("a", 2), frame("b", 2), frame("c", 2)):
        scheduler.offer(delivery)
    assert served(scheduler) == [("b", 2), ("c", 2), ("a", 2)]


def test_under_overload_every_camera_loses_the_same_share() -> None:
    # Four cameras at the same rate, a worker that analyzes one frame per two arrivals.
    reports = LoadReports("w1", interval_s=1, clock=Clock())
    scheduler = FrameScheduler(reports)
    processed: dict[str, int] = {}
    for tick in range(400):
        scheduler.offer(frame("abcd"[tick % 4], tick))
        if tick % 2:
            delivery = scheduler.next()
            assert delivery is not None
            processed[str(delivery.headers["camera_id"])] = (
                processed.get(str(delivery.headers["camera_id"]), 0) + 1
            )
    assert sorted(processed) == ["a", "b", "c", "d"]
    assert max(processed.values()) - min(processed.values()) <= 1  # an even share: 50 each
    assert (
        reports.totals.received == 400
        and reports.totals.dropped + sum(processed.values()) + sum(scheduler.waiting().values()) == 400
    )


def test_frames_that_are_not_droppable_wait_in_order_and_are_never_superseded() -> None:
    scheduler = FrameScheduler()
    for seq in range(4):
        assert scheduler.offer(frame("file", seq, droppable=False)) == []
    scheduler.offer(frame("live", 1))
    scheduler.offer(frame("live", 2))  # supersedes live 1, and nothing of "file"
    assert scheduler.waiting() == {"file": 4, "live": 1}
    # Still in turn with the other cameras, each camera's frames in their order.
    assert served(scheduler) == [("file", 0), ("live", 2), ("file", 1), ("file", 2), ("file", 3)]


def test_a_droppable_frame_does_not_supersede_waiting_frames_that_are_not() -> None:
    scheduler = FrameScheduler()
    kept = frame("a", 1, droppable=False)
    scheduler.offer(kept)
    old = frame("a", 2)
    scheduler.offer(old)
    assert scheduler.offer(frame("a", 3)) == [old]
    assert served(scheduler) == [("a", 1), ("a", 3)]


def test_clear_returns_every_held_frame() -> None:
    scheduler = FrameScheduler()
    held = [frame("a", 1, droppable=False), frame("a", 2, droppable=False), frame("b", 1)]
    for delivery in held:
        scheduler.offer(delivery)
    assert sorted(d.delivery_tag for d in scheduler.clear()) == sorted(d.delivery_tag for d in held)
    assert scheduler.next() is None


def test_a_frame_without_a_camera_is_still_handed_over_for_the_handler_to_reject() -> None:
    scheduler = FrameScheduler()
    scheduler.offer(Delivery(body=b"?", routing_key="x", headers={}))
    delivery = scheduler.next()
    assert delivery is not None and delivery.body == b"?"


def test_load_reports_count_per_camera_and_are_published_with_a_result() -> None:
    clock = Clock()
    reports = LoadReports("w1", interval_s=5, clock=clock, wall=lambda: T0)
    scheduler = FrameScheduler(reports)
    handle = reporting(lambda deliveries: [Handled() for _ in deliveries], reports, clock=clock)
    for seq in range(3):
        scheduler.offer(frame("a", seq))  # two superseded
    scheduler.offer(frame("b", 0))
    delivery = scheduler.next()
    assert delivery is not None
    assert handle([delivery]) == [Handled()]  # not due yet
    clock.now = 5.0
    delivery = scheduler.next()
    assert delivery is not None
    [result] = handle([delivery])
    loads = {o.routing_key: o.message for o in result.publish}
    assert set(loads) == {topology.load_key("a"), topology.load_key("b")}
    a = loads[topology.load_key("a")]
    assert isinstance(a, CameraLoad)
    assert (a.received, a.processed, a.dropped, a.interval_s, a.worker) == (3, 1, 2, 5.0, "w1")
    assert all(not o.persistent and o.exchange == topology.RECOGNIZER_EXCHANGE for o in result.publish)
    assert reports.due() == []  # counting starts again


def test_no_report_rides_on_a_rejected_frame() -> None:
    clock = Clock()
    reports = LoadReports("w1", interval_s=1, clock=clock)
    handle = reporting(
        lambda deliveries: [Handled(rejected="bad frame") for _ in deliveries], reports, clock=clock
    )
    reports.received("a")
    clock.now = 2.0
    assert handle([frame("a", 1)]) == [Handled(rejected="bad frame")]
    assert [load.camera_id for load in reports.due()] == ["a"]  # still due, for the next good frame
