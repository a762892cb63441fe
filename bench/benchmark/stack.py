"""The real system, started for one benchmark run: a fresh database and vhost, enrolled
students, and services as real processes (the same ones `make run` starts)."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pika
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from harness.servers import frame_consumers, fresh_database, fresh_vhost, remove_database, remove_vhost
from services.common import topology
from services.common.amqp.connection import connection_parameters
from services.common.db import create_engine
from services.common.settings import BrokerSettings, DatabaseSettings
from services.common.students import Consent, add_face_encoding, create_student
from services.faces.enrollment import analyze_photo, enrollment_analyzer


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), in MB; None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else None


@dataclass
class Stack:
    database_url: str
    amqp_url: str
    csv_path: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "RECORDER_CSV_PATH": str(self.csv_path),
            "LOG_LEVEL": "WARNING",
        }

    def engine(self) -> sa.Engine:
        return create_engine(DatabaseSettings(database_url=self.database_url))

    def enroll(self, people: dict[str, list[Path]]) -> None:
        analyzer = enrollment_analyzer()
        engine = self.engine()
        for number, photos in people.items():
            with engine.begin() as connection:
                student = create_student(
                    connection, number, number.replace("_", " ").title(), Consent("bench")
                )
                for photo in photos:
                    face = analyze_photo(photo.read_bytes(), analyzer)
                    add_face_encoding(connection, student.id, face)
        engine.dispose()

    def start(self, name: str, module: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(module, {**self.env, **env}, f"bench-{name}")
        self.processes[name] = process
        return process

    def start_recognizers(self, count: int, **env: str) -> None:
        for n in range(1, count + 1):
            self.start(f"recognizer-{n}", "services.recognizer", RECOGNIZER_WORKER_ID=f"w{n}", **env)
        wait_until(lambda: frame_consumers(self.amqp_url) == count, 120, f"{count} recognizer(s)")

    def consumers(self, queue: str) -> int:
        connection = pika.BlockingConnection(
            connection_parameters(BrokerSettings(amqp_url=self.amqp_url), "bench")
        )
        try:
            channel = connection.channel()
            topology.declare(channel)
            return int(channel.queue_declare(queue, passive=True).method.consumer_count)
        finally:
            connection.close()

    def sample_memory(self) -> None:
        for name, process in self.processes.items():
            peak = peak_rss_mb(process.process.pid)
            if peak is not None:
                kind = name.split("-")[0]
                self.peak_mb[kind] = max(self.peak_mb.get(kind, 0.0), peak)

    def stop(self, name: str) -> None:
        self.sample_memory()
        self.processes.pop(name).stop()


@contextmanager
def fresh_stack(tmp: Path) -> Iterator[Stack]:
    database_url = fresh_database()
    vhost, amqp_url = fresh_vhost()
    stack = Stack(database_url, amqp_url, tmp / f"attendance-{time.monotonic_ns()}.csv")
    try:
        yield stack
    finally:
        stack.sample_memory()
        for process in stack.processes.values():
            process.stop()
        remove_vhost(vhost)
        remove_database(database_url)
