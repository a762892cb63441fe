"""The audit log (admins only): who created, changed, exported or erased what, newest first."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin
from services.api.context import Context
from services.api.schemas import AuditEntryOut, AuditPage

router = APIRouter(prefix="/audit", tags=["audit"], responses=AUTH_RESPONSES)


@router.get("", response_model=AuditPage, summary="The audit log, newest first, page by page")
def audit_log(
    _admin: Admin,
    context: Context,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    with context.engine.connect() as connection:
        found, total = audit.entries(connection, page, page_size)
    return AuditPage(
        items=[AuditEntryOut.model_validate(entry) for entry in found],
        total=total,
        page=page,
        page_size=page_size,
    )
