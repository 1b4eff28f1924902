"""Audit trail of changes to a student's records: who, what, when, for whom, with masked details only.

Callers pass details that are already masked (``name_masked``, ``id_masked``); the identity
repository builds its own from the masked columns, never from the clear values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.base import utcnow
from storage.sql.tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    openid: str | None
    details: dict[str, Any]


_INSERT = sa.insert(audit_log)  # built once; the values come as parameters


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    openid: str | None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    values = {"at": at or utcnow(), "actor": actor, "action": action, "openid": openid,
              "details": dict(details or {})}
    await conn.execute(_INSERT, values)


async def for_student(conn: AsyncConnection, openid: str, limit: int = 100) -> list[AuditEntry]:
    stmt = (
        sa.select(audit_log)
        .where(audit_log.c.openid == openid)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return [AuditEntry(**row._mapping) for row in await conn.execute(stmt)]
