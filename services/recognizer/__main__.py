"""Run one recognizer worker: `python -m services.recognizer` (run as many as you have cores)."""

import logging

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.common import topology
from services.common.amqp import Consumer
from services.common.db import create_engine, wait_for_database
from services.common.lifecycle import every, stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.faces.engine import build_analyzer
from services.recognizer.live_gallery import LiveGallery
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings
from services.recognizer.tracking import FaceTracker

logger = logging.getLogger("services.recognizer")


def main() -> None:
    settings = load_settings(RecognizerSettings)
    setup_logging("recognizer", settings.log_level)
    stop = stop_on_signals()
    engine = create_engine(settings, pool_size=1)
    wait_for_database(engine, stop)
    gallery = LiveGallery(engine, settings.recognizer_tolerance, settings.recognizer_margin)
    gallery.reload_now()
    gallery.start(stop)
    tracker = FaceTracker(
        refresh_s=settings.recognizer_track_refresh_s,
        max_gap_s=settings.recognizer_track_max_gap_s,
        min_iou=settings.recognizer_track_min_iou,
        keep_tolerance=settings.recognizer_track_keep_tolerance,
        unknown_refresh_s=settings.recognizer_track_unknown_refresh_s,
    )
    recognizer = FrameRecognizer(
        build_analyzer(**settings.analyzer_options()),
        lambda: gallery.matcher,
        settings.recognizer_worker_id,
        tracker,
    )
    connects = 0

    def listen_for_gallery_changes(_connection: BlockingConnection, channel: BlockingChannel) -> None:
        nonlocal connects
        connects += 1
        if connects > 1:  # broadcasts sent while we were disconnected are lost: reload anyway
            gallery.request_reload()
        private = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(queue=private, exchange=topology.GALLERY_EXCHANGE)
        channel.basic_consume(
            queue=private, on_message_callback=lambda *_: gallery.request_reload(), auto_ack=True
        )

    every(settings.recognizer_stats_interval_s, recognizer.log_stats, stop, "stats")
    logger.info(
        "worker %s ready (tolerance %.2f, margin %.2f)",
        settings.recognizer_worker_id,
        settings.recognizer_tolerance,
        settings.recognizer_margin,
    )
    Consumer(
        settings,
        f"recognizer-{settings.recognizer_worker_id}",
        topology.FRAMES_QUEUE,
        recognizer.handle,
        prefetch=settings.recognizer_prefetch,
        setup=listen_for_gallery_changes,
        stop=stop,
    ).run()
    recognizer.log_stats()


if __name__ == "__main__":
    main()
