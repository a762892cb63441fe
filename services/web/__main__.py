"""Run the dashboard: `python -m services.web` (`--check-config` prints the settings and exits).

gunicorn runs embedded, with its threaded worker: one process (so one live consumer and one
hub for every browser) and WEB_THREADS threads, because each open live page holds a thread
for its Server-Sent Events stream. The app and the live consumer are created in the worker,
after the fork. SIGTERM ends every event stream at once, so shutdown does not wait for
browsers that would keep their pages open forever.
"""

import logging
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from services.common.logs import setup_logging
from services.common.settings import load_settings, redact
from services.web.app import create_app, hub_for
from services.web.live import LiveConsumer
from services.web.live_preview import PreviewConsumer, PreviewStore
from services.web.settings import WebSettings

logger = logging.getLogger("services.web")


class RootLogger(Logger):
    """gunicorn's own lines go through the root handler, in the format every service uses."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.handlers.clear()
            log.propagate = True


class WebServer(BaseApplication):
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.hub = hub_for(settings)
        self.previews = PreviewStore()
        self.consumer: LiveConsumer | None = None
        self.preview_consumer: PreviewConsumer | None = None
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {
            "bind": f"{settings.web_host}:{settings.web_port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": settings.web_threads,
            "loglevel": settings.log_level.lower(),
            "accesslog": "-" if settings.log_level == "DEBUG" else None,
            # Streams end at once on SIGTERM (see post_worker_init); page requests are short.
            "graceful_timeout": 10,
            "proc_name": "attendance-web",
            "logger_class": RootLogger,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            # gunicorn >= 25 opens a control socket in $HOME by default: two dashboards on one
            # machine (tests, several schools) would fight over it, and nothing here uses it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        """Runs in the worker process, after the fork: the consumer thread and the app live there."""
        self.consumer = LiveConsumer(self.settings, self.hub, self.settings.tz, self.stop)
        self.consumer.start()
        if self.settings.web_preview_refresh_s > 0:
            self.preview_consumer = PreviewConsumer(self.settings, self.previews, self.stop)
            self.preview_consumer.start()
        app = create_app(self.settings, hub=self.hub, previews=self.previews)
        logger.info(
            "dashboard on http://%s:%d (API %s, %d threads, up to %d live pages)",
            self.settings.web_host,
            self.settings.web_port,
            redact(self.settings.web_api_url),
            self.settings.web_threads,
            self.settings.max_live_clients,
        )
        return app

    def _post_worker_init(self, worker: Any) -> None:
        """Chain onto gunicorn's SIGTERM handler: also stop the consumer and end every stream."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.stop.set()
            self.hub.close()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        self.stop.set()
        for consumer in (self.consumer, self.preview_consumer):
            if consumer is not None:
                consumer.thread.join(timeout=5)


def main() -> None:
    settings = load_settings(WebSettings)
    setup_logging("web", settings.log_level)
    # One line per API call is noise at INFO; failures are logged by the API client.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    WebServer(settings).run()


if __name__ == "__main__":
    main()
