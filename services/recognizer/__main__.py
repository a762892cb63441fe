"""Run one recognizer worker: `python -m services.recognizer` (run as many as you have cores)."""

import logging

from services.common import topology
from services.common.amqp import Consumer
from services.common.db import create_engine, wait_for_database
from services.common.lifecycle import every, stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.faces.engine import build_analyzer
from services.recognizer.live_gallery import LiveGallery
from services.recognizer.scheduling import FrameScheduler, LoadReports, reporting
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings

logger = logging.getLogger("services.recognizer")


def main() -> None:
    settings = load_settings(RecognizerSettings)
    setup_logging("recognizer", settings.log_level)
    stop = stop_on_signals()
    engine = create_engine(settings, pool_size=1)
    wait_for_database(engine, stop)
    gallery = LiveGallery(
        engine,
        settings.recognizer_tolerance,
        settings.recognizer_margin,
        min_reload_s=settings.recognizer_gallery_min_reload_s,
    )
    gallery.reload_now()
    gallery.start(stop)
    recognizer = FrameRecognizer(
        build_analyzer(**settings.analyzer_options()),
        lambda: gallery.matcher,
        settings.recognizer_worker_id,
        settings.tracker(),
        preview=settings.preview_maker(),
    )
    reports = LoadReports(settings.recognizer_worker_id)

    def log_stats() -> None:
        recognizer.log_stats()
        totals = reports.totals
        logger.info(
            "frames received %d, %d dropped for a newer one of their camera", totals.received, totals.dropped
        )

    every(settings.recognizer_stats_interval_s, log_stats, stop, "stats")
    logger.info(
        "worker %s ready (tolerance %.2f, margin %.2f)",
        settings.recognizer_worker_id,
        settings.recognizer_tolerance,
        settings.recognizer_margin,
    )
    Consumer(
        settings,
        f"recognizer-{settings.recognizer_worker_id}",
        # Its own queue, bound to the consistent-hash frames exchange: its share of the cameras,
        # every frame of each, in order (services.common.topology)...
        topology.RECOGNIZER_FRAMES,
        reporting(recognizer.handle, reports),
        # ...of which only the newest frame per camera waits, cameras served in turn
        # (services.recognizer.scheduling): it takes in everything the broker has for it.
        schedule=FrameScheduler(reports),
        prefetch=max(settings.recognizer_prefetch, topology.FRAMES_PREFETCH),
        # Every worker reloads its gallery when enrolled faces change...
        subscriptions=[(topology.GALLERY_LISTENER, lambda _key, _body: gallery.request_reload())],
        # ...and after a reconnect, since the broadcasts sent while it was away are lost.
        on_reconnect=gallery.request_reload,
        stop=stop,
    ).run()
    log_stats()


if __name__ == "__main__":
    main()
