import json
import threading
from pathlib import Path

from services.recorder.health import Liveness, check


def test_a_fresh_idle_recorder_is_healthy(tmp_path: Path) -> None:
    liveness = Liveness(tmp_path / "h.json")
    liveness.loop_alive()
    liveness.write()
    healthy, why = check(tmp_path / "h.json", max_age_s=10)
    assert healthy and why.startswith("ok")


def test_a_batch_unfinished_for_too_long_is_unhealthy_until_it_finishes(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    liveness = Liveness(path)
    liveness.batch_started("identity events")
    liveness.batch_started("identity events")  # a retry: still the same unfinished batch
    liveness.write()
    started = json.loads(path.read_text())["busy_since"]["identity events"]
    healthy, why = check(path, max_age_s=10, now=started + 11)
    assert not healthy and "no batch of identity events completed for 11s" in why
    assert check(path, max_age_s=10, now=started + 9)[0]
    liveness.batch_done("identity events")
    liveness.write()
    assert check(path, max_age_s=10)[0]


def test_a_loop_that_stopped_going_round_or_a_stale_file_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    liveness = Liveness(path)
    liveness.loop_alive()
    liveness.write()
    state = json.loads(path.read_text())
    assert "consumer loop has not run" in check(path, 5, now=state["loop_at"] + 6)[1]
    assert "last written" in check(path, 5, now=state["written_at"] + 6)[1]


def test_problems_are_shown_and_a_missing_file_means_not_running(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    assert check(path, 5) == (
        False,
        f"unhealthy: no {path}: the recorder is not running (or is still starting)",
    )
    liveness = Liveness(path)
    liveness.problem("csv", "a.csv is not ours: move it aside")
    liveness.write()
    assert check(path, 5) == (False, "unhealthy: a.csv is not ours: move it aside")
    liveness.problem("csv", None)
    liveness.write()
    assert check(path, 5)[0]


def test_the_file_is_kept_up_to_date_and_removed_at_a_clean_stop(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    liveness = Liveness(path, interval_s=0.01)
    stop = threading.Event()
    liveness.start(stop)
    first = json.loads(path.read_text())["written_at"]
    stop.wait(0.1)
    assert json.loads(path.read_text())["written_at"] > first
    stop.set()
    liveness.remove()
    liveness.write()
    assert not path.exists()
