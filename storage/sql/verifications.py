"""Results of real-name verification, tied to the exact binding version that was checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.base import utcnow
from storage.sql.identity import Binding
from storage.sql.tables import VERIFICATION_OUTCOMES
from storage.sql.tables import verifications as tv

PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Verification:
    id: int
    openid: str
    binding_id: int
    binding_version: int
    outcome: str
    provider: str
    checked_at: datetime
    details: dict[str, Any]


_INSERT = sa.insert(tv)  # built once; the values come as parameters


async def record(
    conn: AsyncConnection, binding: Binding, *, outcome: str, provider: str,
    details: Mapping[str, Any] | None = None, at: datetime | None = None,
) -> None:
    """``details`` is provider metadata (request id, error code), never the checked name or number."""
    if outcome not in VERIFICATION_OUTCOMES:
        raise ValueError(f"unknown verification outcome {outcome!r}")
    await conn.execute(_INSERT, {
        "openid": binding.openid, "binding_id": binding.id, "binding_version": binding.version,
        "outcome": outcome, "provider": provider, "checked_at": at or utcnow(), "details": dict(details or {}),
    })


# Built once: building and cache-keying a SELECT on every call was a third of a status lookup's CPU.
_LATEST = (
    sa.select(tv)
    .where(tv.c.binding_id == sa.bindparam("binding_id"), tv.c.binding_version == sa.bindparam("version"))
    .order_by(tv.c.checked_at.desc(), tv.c.id.desc())
    .limit(1)
)


async def latest(conn: AsyncConnection, binding: Binding) -> Verification | None:
    row = (await conn.execute(_LATEST, {"binding_id": binding.id, "version": binding.version})).first()
    return Verification(**row._mapping) if row else None


async def status(conn: AsyncConnection, binding: Binding) -> str:
    """The outcome for the binding as it is now; a binding changed since its last check is pending."""
    found = await latest(conn, binding)
    return found.outcome if found else PENDING
