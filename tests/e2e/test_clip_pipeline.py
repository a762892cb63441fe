"""The whole pipeline on the shared clip: enroll with the real command, then capture -> two
recognizer processes -> recorder, through the real broker into MySQL and the CSV. Each
service connects to MySQL as its own user, with compose's privileges (db_grants)."""

import csv
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.paths import ROOT
from harness.processes import ServiceProcess, wait_until
from harness.servers import frame_consumers, frames_waiting
from services.common import topology
from tests.support.amqp import TestBroker
from tests.support.db_users import service_db_user

pytestmark = [pytest.mark.e2e, pytest.mark.faces]

ENROLLED = {
    "lin_manuel_miranda": "Lin-Manuel Miranda",
    "barack_obama": "Barack Obama",  # the others are not in the clip: they must never be marked
    "joe_biden": "Joe Biden",
    "kit_harington": "Kit Harington",
    "rose_leslie": "Rose Leslie",
}


@pytest.fixture
def env(database_url: str, amqp_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "RECORDER_CSV_PATH": str(tmp_path / "att.csv"),
    }


@pytest.fixture
def db_as(database_url: str) -> Iterator[dict[str, str]]:
    """Each service's DATABASE_URL, as compose gives it: its own MySQL user (db_grants)."""
    with ExitStack() as users:
        yield {
            s: users.enter_context(service_db_user(database_url, s))
            for s in ("api", "recorder", "recognizer")
        }


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


def test_lin_manuel_miranda_is_marked_present_exactly_once_and_nobody_else(
    env: dict[str, str],
    db_as: dict[str, str],
    processes: list[ServiceProcess],
    engine: sa.Engine,
    faces_dir: Path,
    tmp_path: Path,
) -> None:
    for number, name in ENROLLED.items():
        photos = sorted((faces_dir / "people" / number).glob("*.jpg"))[:1]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.recognizer.enroll",
                "--number",
                number,
                "--name",
                name,
                "--consent",
                "test: consent form on file",
                *map(str, photos),
            ],
            cwd=ROOT,
            env={**env, "DATABASE_URL": db_as["api"], "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            timeout=120,
        )
    processes.append(
        ServiceProcess("services.recorder", {**env, "DATABASE_URL": db_as["recorder"]}, "e2e-recorder")
    )
    processes += [
        ServiceProcess(
            "services.recognizer",
            {**env, "DATABASE_URL": db_as["recognizer"], "RECOGNIZER_WORKER_ID": f"w{n}"},
            f"e2e-recognizer-{n}",
        )
        for n in (1, 2)
    ]
    broker = TestBroker(env["AMQP_URL"])
    try:
        wait_until(lambda: frame_consumers(env["AMQP_URL"]) == 2, 60, "two recognizers")
        capture = ServiceProcess(
            "services.capture",
            {
                **env,
                "CAPTURE_SOURCE": str(faces_dir / "video" / "short_hamilton_clip.mp4"),
                "CAPTURE_FPS": "0",
                "CAPTURE_PACE": "fast",
                "CAMERA_ID": "stage",
            },
            "e2e-capture",
        )
        processes.append(capture)
        assert capture.wait(timeout_s=600) == 0
        assert "275 frames published" in capture.log()
        # Fast pace: capture exits once its last frames were analyzed (its credit window).
        wait_until(lambda: frames_waiting(env["AMQP_URL"]) == 0, 60, "recognizers to finish")
        wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 60, "the recorder to finish")
    finally:
        broker.close()
    for process in processes:
        assert process.stop() == 0, process.log()[-2000:]

    with engine.connect() as connection:
        marked = connection.execute(
            sa.text(
                "SELECT s.student_number, cs.camera_id FROM attendance a JOIN students s ON s.id = a.student_id "
                "JOIN class_sessions cs ON cs.id = a.session_id"
            )
        ).all()
        recognized = set(
            connection.execute(
                sa.text(
                    "SELECT DISTINCT s.student_number FROM identity_events e JOIN students s ON s.id = e.student_id"
                )
            ).scalars()
        )
    assert [tuple(row) for row in marked] == [("lin_manuel_miranda", "stage")]
    assert recognized == {"lin_manuel_miranda"}  # no frame named anyone else, not even once
    with (tmp_path / "att.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["student_number"], r["student_name"], r["status"]) for r in rows] == [
        ("lin_manuel_miranda", "Lin-Manuel Miranda", "present")
    ]
    workers = {p.log_path.name: p.log() for p in processes if "recognizer" in p.log_path.name}
    assert all("frames" in log for log in workers.values())
