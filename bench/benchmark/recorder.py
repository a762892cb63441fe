"""The recorder alone: identity events persisted per second from a full queue, redeliveries
mixed in, and proof that none of them became a duplicate row or mark."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pika
import sqlalchemy as sa

from bench.benchmark.measure import progress
from bench.benchmark.stack import fresh_stack
from bench.benchmark.system import Bench
from harness.processes import wait_until
from services.common import topology
from services.common.amqp.connection import connection_parameters
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown
from services.common.settings import BrokerSettings
from services.common.students import create_student


def recorder_run(bench: Bench, events: int, redelivered_share: float) -> dict[str, Any]:
    with fresh_stack(bench.tmp) as stack:
        engine = stack.engine()
        with engine.begin() as connection:
            students = [create_student(connection, f"S{n:03d}", f"Student {n}").id for n in range(60)]
        unique = int(events / (1 + redelivered_share))
        now = datetime.now(UTC)
        box = FaceBox(top=0, right=10, bottom=10, left=0)
        rng = np.random.default_rng(0)
        batch: list[FaceRecognized | FaceUnknown] = []
        for n in range(unique):
            camera = f"room-{n % 5}"
            captured = now + timedelta(milliseconds=n)
            if n % 4 == 3:
                batch.append(
                    FaceUnknown(camera_id=camera, frame_seq=n, captured_at=captured, box=box, worker="b")
                )
            else:
                student = students[int(rng.integers(len(students)))]
                batch.append(
                    FaceRecognized(
                        camera_id=camera,
                        frame_seq=n,
                        captured_at=captured,
                        box=box,
                        worker="b",
                        student_id=student,
                        student_number=f"S{student}",
                        student_name="x",
                        distance=0.4,
                    )
                )
        extra = [batch[int(i)] for i in rng.integers(unique, size=events - unique)]  # redeliveries
        progress(f"recorder: publishing {events} events ({len(extra)} redelivered) before it starts")
        connection = pika.BlockingConnection(
            connection_parameters(BrokerSettings(amqp_url=stack.amqp_url), "bench")
        )
        channel = connection.channel()
        topology.declare(channel)
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
        )
        for event in [*batch, *extra]:
            key = (
                topology.recognized_key(event.camera_id)
                if isinstance(event, FaceRecognized)
                else topology.unknown_key(event.camera_id)
            )
            channel.basic_publish(
                topology.RECOGNIZER_EXCHANGE, key, event.model_dump_json().encode(), properties
            )
        # A passive declare on the same channel is answered after the publishes before it.
        wait_until(
            lambda: (
                channel.queue_declare(topology.IDENTITY_QUEUE, passive=True).method.message_count >= events
            ),
            120,
            "the events to be queued",
        )
        connection.close()
        started = time.perf_counter()
        stack.start("recorder", "services.recorder")

        def count() -> int:
            with engine.connect() as db:
                return int(db.execute(sa.text("SELECT COUNT(*) FROM identity_events")).scalar_one())

        wait_until(lambda: count() >= unique, 600, "every event persisted", interval_s=0.05)
        seconds = time.perf_counter() - started
        stack.sample_memory()
        with engine.connect() as db:
            distinct = db.execute(
                sa.text("SELECT COUNT(DISTINCT event_id) FROM identity_events")
            ).scalar_one()
            rows = db.execute(sa.text("SELECT COUNT(*) FROM identity_events")).scalar_one()
            marks = db.execute(sa.text("SELECT COUNT(*) FROM attendance")).scalar_one()
            pairs = db.execute(
                sa.text("SELECT COUNT(DISTINCT session_id, student_id) FROM attendance")
            ).scalar_one()
            first, last = db.execute(
                sa.text("SELECT MIN(recorded_at), MAX(recorded_at) FROM identity_events")
            ).one()
        busy = max((last - first).total_seconds(), 1e-3)  # first to last commit: the recorder's own pace
        engine.dispose()
        bench.remember_memory(stack)
        return {
            "events_published": events,
            "unique_events": unique,
            "seconds_incl_start": round(seconds, 2),
            "events_per_s": round(events / busy),
            "events_per_s_incl_start": round(events / seconds),
            "identity_rows": rows,
            "duplicate_rows": rows - distinct,
            "attendance_rows": marks,
            "duplicate_marks": marks - pairs,
        }
