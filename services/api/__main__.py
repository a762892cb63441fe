"""Run the API: `python -m services.api` (`--check-config` prints the settings and exits).

uvicorn serves it. Its keep-alive timeout (`timeout_keep_alive`) starts only once a response
has been sent, and it has no header or body timeout: a connection that sent part of its
headers, or a body slower than it announced, stayed open for ever (issue 9, finding 8; each
costs a file descriptor and a little memory, no thread, as uvicorn is asynchronous).
`DeadlineProtocol` gives every connection API_REQUEST_TIMEOUT_S to deliver a whole request,
from its opening or its previous response; a request being answered (an enrollment analysing
its photos) is never cut.
"""

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common.db import TRANSIENT_DB_ERRORS, wait_for_database
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings

logger = logging.getLogger("services.api")

# Seconds a kept-alive connection may stay idle after a response (uvicorn's default, said here).
KEEP_ALIVE_S = 5


def deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    class DeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(timeout_s, self._expired)

        def _expired(self) -> None:
            cycle = self.cycle
            # No request yet (headers incomplete), the last one answered, or a body still coming.
            waiting = cycle is None or cycle.response_complete or cycle.more_body
            if waiting and not self.transport.is_closing():
                logger.debug("closed a connection that sent no whole request in %.0f s", timeout_s)
                self.transport.close()

    return DeadlineProtocol


def main() -> None:
    settings = load_settings(ApiSettings)
    setup_logging("api", settings.log_level)
    app = create_app(settings)
    # Serve only once MySQL answers, so the first requests do not fail while it starts.
    stop = stop_on_signals()
    try:
        wait_for_database(app.state.context.engine, stop)
    except TRANSIENT_DB_ERRORS:
        logger.info("stopped before MySQL was reachable")
        return
    logger.info("listening on %s:%d (docs at /docs)", settings.api_host, settings.api_port)
    # log_config=None: uvicorn's loggers go through the root handler set up above, one format.
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        http=deadline_protocol(settings.api_request_timeout_s),
        timeout_keep_alive=KEEP_ALIVE_S,
    )


if __name__ == "__main__":
    main()
