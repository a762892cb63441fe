"""Run the dashboard: `python -m services.web` (`--check-config` prints the settings and exits).

One process (so one live consumer and one hub for every browser) under waitress.

Why waitress (issue 9, finding 8): each open live page holds a thread for its Server-Sent
Events stream, so the threads kept free for pages must never be taken by anything else.
gunicorn's threaded worker hands a connection to a thread as soon as its first byte arrives
and the thread then blocks until the headers (and body) are complete: 28 live streams plus 6
connections that never finished their headers froze every page for over 30 s. waitress reads
and buffers whole requests (headers and body) in its asynchronous main loop and gives a
thread only a complete request, so a slow or stalled client costs a socket, never a thread.
On top of it (DeadlineChannel below), a connection must deliver a whole request within
WEB_REQUEST_TIMEOUT_S of opening or of its previous response, whether it trickles bytes or
sends none: that is both the header and the body timeout, and also the idle keep-alive one.
WEB_CONNECTION_LIMIT bounds the open connections (poll(), not select(), so past 1024 too).
Rejected: gunicorn's gevent worker (monkey-patching under pika and our threads) and serving
the WSGI app under an async server through an adapter (another layer, and uvicorn has no
header timeout either).

SIGTERM (and Ctrl-C) end every event stream at once, so shutdown does not wait for browsers
that would keep their pages open forever.
"""

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from services.common.logs import setup_logging
from services.common.settings import load_settings, redact
from services.web.app import create_app, hub_for
from services.web.camera_loads import CameraLoadConsumer, CameraLoads
from services.web.live import LiveConsumer
from services.web.live_preview import PreviewConsumer, PreviewStore
from services.web.settings import WebSettings

logger = logging.getLogger("services.web")


class DeadlineChannel(HTTPChannel):
    """A connection whose clock restarts only when it has been answered: waitress's own
    `channel_timeout` restarts at every byte received, so a client trickling one byte at a
    time would never be cut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since = time.monotonic()

    def service(self) -> None:
        try:
            super().service()
        finally:
            self.waiting_since = time.monotonic()


class DashboardServer(TcpWSGIServer):
    channel_class = DeadlineChannel

    def maintenance(self, now: float) -> None:
        """Close every connection that has no request being answered (a live stream is one)
        and has not completed one within the timeout (adj.channel_timeout)."""
        cutoff = time.monotonic() - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if not channel.requests and channel.waiting_since < cutoff:
                channel.will_close = True


def make_server(app: Any, settings: WebSettings) -> MultiSocketServer:
    timeout = max(1, round(settings.web_request_timeout_s))
    adj = Adjustments(
        host=settings.web_host,
        port=settings.web_port,
        threads=settings.web_threads,
        channel_timeout=timeout,
        # How often the timeout is checked: a stalled connection lives at most timeout + this.
        cleanup_interval=max(1, timeout // 4),
        connection_limit=settings.web_connection_limit,
        asyncore_use_poll=True,
        # Uploads are bounded here too (the API checks them again).
        max_request_body_size=settings.web_max_upload_mb * 1024 * 1024 + 64 * 1024,
        ident="attendance-web",
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict[int, Any] = {}
    # One listening socket per address the host resolves to, in one loop (as waitress's own
    # create_server does; it cannot be given a channel class).
    servers = [
        DashboardServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
        for sockinfo in adj.listen
    ]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, servers[0].log_info)


def main() -> None:
    settings = load_settings(WebSettings)
    setup_logging("web", settings.log_level)
    # One line per API call is noise at INFO; failures are logged by the API client.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()
    hub = hub_for(settings)
    previews = PreviewStore()
    camera_loads = CameraLoads()
    consumers: list[LiveConsumer | PreviewConsumer | CameraLoadConsumer] = [
        LiveConsumer(settings, hub, settings.tz, stop),
        CameraLoadConsumer(settings, camera_loads, stop),
    ]
    if settings.web_preview_refresh_s > 0:
        consumers.append(PreviewConsumer(settings, previews, stop))
    for consumer in consumers:
        consumer.start()
    app = create_app(settings, hub=hub, previews=previews, camera_loads=camera_loads)
    server = make_server(app, settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s: stopping (live streams end now)", signal.Signals(signum).name)
        stop.set()
        hub.close()
        raise SystemExit(0)  # ends waitress's loop, which then stops its threads

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info(
        "dashboard on http://%s:%d (API %s, %d threads, up to %d live pages, request timeout %.0f s)",
        settings.web_host,
        settings.web_port,
        redact(settings.web_api_url),
        settings.web_threads,
        settings.max_live_clients,
        settings.web_request_timeout_s,
    )
    try:
        server.run()
    finally:
        stop.set()
        for consumer in consumers:
            consumer.thread.join(timeout=5)


if __name__ == "__main__":
    main()
