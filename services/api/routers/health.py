"""Liveness of the API and of what it depends on."""

import logging

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.api.context import Context
from services.api.schemas import Health
from services.common.amqp import broker_reachable
from services.common.db import TRANSIENT_DB_ERRORS

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

# A health probe must answer quickly even when a dependency hangs.
BROKER_TIMEOUT_S = 2.0


def _database_ok(context: Context) -> bool:
    try:
        with context.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except TRANSIENT_DB_ERRORS as error:
        logger.warning("health: database unavailable (%s)", getattr(error, "orig", error))
        return False
    return True


@router.get(
    "/health",
    response_model=Health,
    summary="Is the API up, and can it reach MySQL and RabbitMQ?",
    responses={503: {"description": "MySQL or RabbitMQ unreachable (the body says which)"}},
)
def health(context: Context) -> JSONResponse:
    database = _database_ok(context)
    broker = broker_reachable(context.settings, BROKER_TIMEOUT_S, "api-health")
    body = Health(
        status="ok" if database and broker else "unavailable",
        database="ok" if database else "unavailable",
        broker="ok" if broker else "unavailable",
    ).model_dump()
    if database and broker:
        return JSONResponse(body)
    failing = " and ".join(
        name for name, ok in (("the database", database), ("the broker", broker)) if not ok
    )
    return JSONResponse({"detail": f"{failing} cannot be reached", **body}, status_code=503)
