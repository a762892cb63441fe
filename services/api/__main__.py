"""Run the API: `python -m services.api` (`--check-config` prints the settings and exits)."""

import logging

import uvicorn

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common.db import TRANSIENT_DB_ERRORS, wait_for_database
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings

logger = logging.getLogger("services.api")


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
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None)


if __name__ == "__main__":
    main()
