"""`python -m bench.evaluate` on the small generated lesson, as a person would run it: the
real system on a fresh database and vhost, with one recognizer. This proves the evaluation
itself (its report is what MySQL holds, in every section), not the recognition figures, which
belong to `make evaluate`."""

import json
import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa

from bench.lessons.cast import LFW_DIR
from bench.lessons.lesson import generate, preset
from harness.paths import ROOT
from harness.servers import remove_database
from services.common.db import create_engine
from services.common.settings import DatabaseSettings

pytestmark = pytest.mark.faces


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, dict[str, Any]]:
    if not (LFW_DIR / "people").is_dir():
        pytest.fail(f"the LFW faces are not at {LFW_DIR}; set LFW_DIR")
    tmp = tmp_path_factory.mktemp("lesson-eval")
    truth = generate(preset("small", seed=3), tmp / "lesson")
    report_path = tmp / "report.json"
    run = subprocess.run(  # the command as a person runs it, on the real services
        [
            sys.executable,
            "-m",
            "bench.evaluate",
            "--lesson",
            str(tmp / "lesson"),
            "--recognizers",
            "1",
            "--speed",
            "2",
            "--min-face-px",
            "40",
            "--json",
            str(report_path),
            "--keep-database",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    yield report, run.stdout, truth
    remove_database(report["database_url"])


def _db(report: dict[str, Any]) -> sa.Engine:
    return create_engine(DatabaseSettings(database_url=report["database_url"]))


def test_the_report_prints_every_section(evaluated) -> None:
    report, stdout, _ = evaluated
    for section in ("Marked (", "Missed (", "Wrongly marked (", "Wrong-name events (", "consistency:"):
        assert section in stdout
    marked, check = len(report["marked"]), len(report["marked_check"])
    assert f'Marked ({marked} of {len(report["expected"])} expected, {check} of them on "check")' in stdout
    assert f"Wrong-name events ({len(report['wrong_name_events'])})" in stdout


def test_the_system_really_ran_the_whole_video(evaluated) -> None:
    report, _, truth = evaluated
    run = report["run"]
    assert run["frames_published"] == truth["frames"]  # capture played the whole file
    assert 0 < run["frames_analyzed"] <= run["frames_published"]
    assert set(run["frames_per_worker"]) == {"w1"}
    assert report["events"]["total"] > 0  # faces were found and reported
    with _db(report).connect() as db:
        assert (
            db.execute(sa.text("SELECT COUNT(*) FROM identity_events")).scalar_one()
            == report["events"]["total"]
        )
        students = db.execute(sa.text("SELECT COUNT(*) FROM face_encodings")).scalar_one()
    assert students == report["enrollment"]["photos"] > 0


def test_the_roll_is_the_databases_and_splits_into_marked_missed_wrong(evaluated) -> None:
    report, _, truth = evaluated
    expected = set(truth["present"]) & set(truth["roster"])
    assert set(report["expected"]) == expected
    with _db(report).connect() as db:
        session = db.execute(
            sa.text("SELECT id, course_id FROM class_sessions WHERE default_day IS NULL")
        ).one()
        roster = set(
            db.execute(
                sa.text(
                    "SELECT s.student_number FROM course_students c JOIN students s ON s.id = c.student_id "
                    "WHERE c.course_id = :c"
                ),
                {"c": session.course_id},
            ).scalars()
        )
        marked = set(
            db.execute(
                sa.text(
                    "SELECT s.student_number FROM attendance a JOIN students s ON s.id = a.student_id "
                    "WHERE a.session_id = :s"
                ),
                {"s": session.id},
            ).scalars()
        )
        all_marks = db.execute(sa.text("SELECT COUNT(*) FROM attendance")).scalar_one()
    assert roster == set(truth["roster"])
    assert report["session_id"] == session.id
    assert set(report["roll"]) == marked
    assert set(report["marked"]) == marked & expected
    assert {m["student_number"] for m in report["missed"]} == expected - marked
    assert {m["student_number"] for m in report["wrongly_marked"]} == marked - expected
    assert len(report["marks_outside_lesson_session"]) == all_marks - len(marked)
    assert report["consistency"]["csv_agrees_with_db"]
    assert report["consistency"]["csv_rows"] == all_marks


def test_every_wrong_name_event_is_a_recorded_event_naming_someone_not_there(evaluated) -> None:
    report, _, truth = evaluated
    with _db(report).connect() as db:
        rows = {
            r.event_id: r
            for r in db.execute(
                sa.text(
                    "SELECT e.event_id, e.kind, e.frame_seq, e.distance, s.student_number FROM identity_events e "
                    "LEFT JOIN students s ON s.id = e.student_id"
                )
            )
        }
    expected = set(report["expected"])
    for event in report["wrong_name_events"]:
        row = rows[event["event_id"]]
        assert row.kind == "recognized" and row.student_number == event["named"]
        assert event["frame"] == row.frame_seq  # every frame is published: the frame is the file's
        assert event["distance"] == pytest.approx(row.distance, abs=1e-3)
        assert event["media_s"] == pytest.approx(event["frame"] / truth["fps"], abs=0.01)
        # Named someone who is not the person drawn there, or someone outside the class's roll.
        assert event["really"] != event["named"] or event["named"] not in expected
    # And the converse: a recognized event naming a student not in the lesson is always listed.
    listed = {e["event_id"] for e in report["wrong_name_events"]}
    in_video = set(truth["present"]) | set(truth["others"])
    for event_id, row in rows.items():
        if row.kind == "recognized" and row.student_number not in in_video:
            assert event_id in listed


def test_the_review_section_is_the_sessions_review_queue(evaluated) -> None:
    report, stdout, _ = evaluated
    review = report["review"]
    with _db(report).connect() as db:
        items = db.execute(
            sa.text(
                "SELECT r.state, s.student_number FROM review_items r "
                "LEFT JOIN students s ON s.id = r.candidate_id WHERE r.session_id = :session"
            ),
            {"session": report["session_id"]},
        ).all()
    assert review["items"] == len(items)
    assert review["open"] == sum(1 for state, _ in items if state == "open")
    missed = {m["student_number"] for m in report["missed"]}
    open_candidates = {number for state, number in items if state == "open"}
    assert set(review["missed_suggested_as_themselves"]) <= missed & open_candidates
    assert f"review queue: {review['open']} open of {review['items']} items" in stdout
