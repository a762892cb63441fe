from bench.cameras.roll import camera_roll, latency_ms, run_roll


def test_a_camera_roll_counts_present_marked_and_wrong_marks() -> None:
    roll = camera_roll({"a", "b", "c"}, {"a", "b", "x"})
    assert roll == {"present": 3, "marked": 2, "complete": False, "wrongly_marked": ["x"]}


def test_run_totals_and_worst_camera() -> None:
    run = run_roll({"a", "b"}, {"c1": {"a", "b"}, "c2": {"a"}, "c3": {"a", "b", "z"}})
    assert (run["marked"], run["present"], run["complete_cameras"]) == (5, 6, 2)
    assert (run["wrongly_marked"], run["worst_camera"], run["worst_marked"]) == (1, "c2", 1)


def test_latency_percentiles() -> None:
    assert latency_ms([]) == {"p50": None, "p95": None, "events": 0}
    figures = latency_ms([n / 100 for n in range(1, 101)])  # 10..1000 ms
    assert figures["events"] == 100
    assert figures["p50"] == 505.0
    assert 945 <= (figures["p95"] or 0) <= 955
