"""The audit log: who created, changed, exported or erased what.

Written in the same transaction as the change it describes, so a change and its entry
commit together or not at all. Exports (reads) are written in a transaction of their own.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.accounts.tokens import Principal
from services.common.attendance import as_utc

MAX_DETAIL = 2000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    detail: str


def record(
    connection: Connection,
    principal: Principal | None,
    action: str,
    target_type: str,
    target_id: object = None,
    *,
    detail: str = "",
) -> None:
    """Append an entry; `principal` None is the command line (create-admin)."""
    connection.execute(
        sa.text(
            "INSERT INTO audit_log "
            "(actor, actor_user_id, actor_token_id, action, target_type, target_id, detail) "
            "VALUES (:actor, :user, :token, :action, :type, :target, :detail)"
        ),
        {
            "actor": principal.actor if principal else "command line",
            "user": principal.user_id if principal else None,
            "token": principal.token_id if principal else None,
            "action": action,
            "type": target_type,
            "target": None if target_id is None else str(target_id),
            "detail": detail[:MAX_DETAIL],
        },
    )


def entries(connection: Connection, page: int, page_size: int) -> tuple[list[AuditEntry], int]:
    """The newest first."""
    total = connection.execute(sa.text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    rows = connection.execute(
        sa.text(
            "SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log "
            "ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
        ),
        {"limit": page_size, "offset": (page - 1) * page_size},
    )
    found = [
        AuditEntry(int(r.id), as_utc(r.at), r.actor, r.action, r.target_type, r.target_id, r.detail)
        for r in rows
    ]
    return found, int(total)
