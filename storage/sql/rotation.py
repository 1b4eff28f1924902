"""Data key rotation: re-encrypt identity rows written under a previous key, in small transactions.

Procedure (docs/data.md): start every process with the new key as current and the old one as
previous, run ``gradbot db rotate-key`` until nothing remains, then drop the previous key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit
from storage.sql.crypto import Keyring
from storage.sql.db import Database
from storage.sql.identity import id_context, name_context
from storage.sql.tables import identity_bindings as tb


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int
    current_kid: str
    # Rows under keys the keyring does not hold: they cannot be read until that key is supplied.
    unknown: dict[str, int] = field(default_factory=dict)


async def key_usage(conn: AsyncConnection) -> dict[str, int]:
    stmt = sa.select(tb.c.key_id, sa.func.count()).group_by(tb.c.key_id)
    return {kid: int(n) for kid, n in await conn.execute(stmt)}


async def rotate_batch(conn: AsyncConnection, keyring: Keyring, limit: int = 200) -> int:
    old = [k.kid for k in keyring.previous]
    if not old:
        return 0
    stmt = (
        sa.select(tb.c.id, tb.c.openid, tb.c.key_id, tb.c.name_enc, tb.c.id_enc)
        .where(tb.c.key_id.in_(old)).order_by(tb.c.id).limit(limit).with_for_update()
    )
    rows = (await conn.execute(stmt)).all()
    for row in rows:
        await conn.execute(
            sa.update(tb).where(tb.c.id == row.id, tb.c.key_id == row.key_id)
            .values(**_reencrypt_values(keyring, row.openid, row.name_enc, row.id_enc))
        )
    return len(rows)


def _reencrypt_values(keyring: Keyring, openid: str, name_enc: str, id_enc: str) -> dict[str, str]:
    name = keyring.decrypt(name_enc, name_context(openid))
    number = keyring.decrypt(id_enc, id_context(openid))
    return {
        "name_enc": keyring.encrypt(name, name_context(openid)),
        "id_enc": keyring.encrypt(number, id_context(openid)),
        "id_hmac": keyring.lookup_hash(number),
        "key_id": keyring.current.kid,
    }


async def rotate(db: Database, keyring: Keyring, batch: int = 200) -> RotationReport:
    """Re-encrypt every row under a previous key; each batch commits on its own, so it can resume."""
    total = 0
    while True:
        async with db.begin() as conn:
            done = await rotate_batch(conn, keyring, batch)
            if done:
                await audit.record(conn, actor="system:rotate-key", action="data_key.rotate", openid=None,
                                   details={"rows": done, "to_kid": keyring.current.kid})
        total += done
        if done < batch:
            break
    async with db.read() as conn:
        usage = await key_usage(conn)
    unknown = {kid: n for kid, n in usage.items() if kid not in keyring.kids}
    return RotationReport(total, keyring.current.kid, unknown)
