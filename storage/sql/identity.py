"""Identity bindings: ID type, name and ID number of a student, encrypted, unique per ID number.

Clear values enter through ``IdentityInput`` and leave only through ``reveal`` (for the verifier).
Every other read returns ``Binding``, which holds masked values only. Uniqueness is enforced by a
unique index on the keyed hash ``id_hmac``; during a key rotation rows may still carry the hash under
the previous key, so the pre-check looks up the hashes under every key in the keyring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit, students
from storage.sql.base import utcnow
from storage.sql.crypto import Keyring, normalise_id_number
from storage.sql.errors import AlreadyBound, IdNumberTaken, NotBound
from storage.sql.tables import identity_bindings as tb

Mask = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class PiiCodec:
    """Encryption keys plus the masking rules of the composition root (storage imports no masking code)."""

    keyring: Keyring
    mask_name: Mask
    mask_id: Mask


@dataclass(frozen=True, slots=True)
class IdentityInput:
    id_type: str
    name: str = field(repr=False)
    id_number: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    openid: str
    id_type: str
    name_masked: str
    id_masked: str
    version: int
    key_id: str
    created_at: datetime
    updated_at: datetime

    def masked(self) -> dict[str, str]:
        return {"id_type": self.id_type, "name_masked": self.name_masked, "id_masked": self.id_masked}


_BINDING_COLUMNS = [tb.c[name] for name in Binding.__dataclass_fields__]


def name_context(openid: str) -> str:
    return f"identity.name|{openid}"


def id_context(openid: str) -> str:
    return f"identity.id_number|{openid}"


def encode(codec: PiiCodec, openid: str, identity: IdentityInput) -> dict[str, Any]:
    """Column values for a binding: tokens, keyed hash and masks; no clear value survives here."""
    number = normalise_id_number(identity.id_number)
    name = identity.name.strip()
    keyring = codec.keyring
    return {
        "id_type": identity.id_type,
        "name_enc": keyring.encrypt(name, name_context(openid)),
        "name_masked": codec.mask_name(name),
        "id_enc": keyring.encrypt(number, id_context(openid)),
        "id_masked": codec.mask_id(number),
        "id_hmac": keyring.lookup_hash(number),
        "key_id": keyring.current.kid,
    }


# Built once: building and cache-keying a SELECT on every call was a third of a status lookup's CPU.
_GET = sa.select(*_BINDING_COLUMNS).where(tb.c.openid == sa.bindparam("openid"))


async def get(conn: AsyncConnection, openid: str) -> Binding | None:
    row = (await conn.execute(_GET, {"openid": openid})).first()
    return Binding(**row._mapping) if row else None


async def find_openid(conn: AsyncConnection, keyring: Keyring, id_number: str) -> str | None:
    """Which student holds this ID number, by keyed hash (under any key of the keyring)."""
    hashes = keyring.lookup_hashes(id_number)
    stmt = sa.select(tb.c.openid).where(tb.c.id_hmac.in_(hashes)).limit(1)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def reveal(conn: AsyncConnection, keyring: Keyring, openid: str) -> IdentityInput | None:
    """The clear values, for the identity verifier only. Never log or display the result."""
    stmt = sa.select(tb.c.id_type, tb.c.name_enc, tb.c.id_enc).where(tb.c.openid == openid)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    name = keyring.decrypt(row.name_enc, name_context(openid))
    return IdentityInput(row.id_type, name, keyring.decrypt(row.id_enc, id_context(openid)))


async def bind(
    conn: AsyncConnection, codec: PiiCodec, openid: str, identity: IdentityInput, *,
    actor: str, at: datetime | None = None,
) -> Binding:
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    if await get(conn, openid) is not None:
        raise AlreadyBound("this student already has an identity binding; change it instead")
    await _refuse_taken(conn, codec.keyring, identity.id_number, openid)
    values = {**encode(codec, openid, identity), "openid": openid, "version": 1,
              "created_at": at, "updated_at": at}
    await _guarded(conn, codec.keyring, identity.id_number, openid, sa.insert(tb).values(**values))
    binding = await _must_get(conn, openid)
    await audit.record(conn, actor=actor, action="identity.bind", openid=openid,
                       details=binding.masked(), at=at)
    return binding


async def change(
    conn: AsyncConnection, codec: PiiCodec, openid: str, identity: IdentityInput, *,
    actor: str, at: datetime | None = None,
) -> Binding:
    at = at or utcnow()
    before = await _must_get(conn, openid)
    await _refuse_taken(conn, codec.keyring, identity.id_number, openid)
    values = {**encode(codec, openid, identity), "version": before.version + 1, "updated_at": at}
    stmt = sa.update(tb).where(tb.c.openid == openid).values(**values)
    await _guarded(conn, codec.keyring, identity.id_number, openid, stmt)
    after = await _must_get(conn, openid)
    await audit.record(conn, actor=actor, action="identity.change", openid=openid,
                       details={"before": before.masked(), "after": after.masked()}, at=at)
    return after


async def unbind(
    conn: AsyncConnection, openid: str, *, actor: str, reason: str = "", at: datetime | None = None,
) -> Binding:
    """Delete the binding (data minimisation: nothing encrypted is kept) and audit what it was."""
    before = await _must_get(conn, openid)
    await conn.execute(sa.delete(tb).where(tb.c.openid == openid))
    await audit.record(conn, actor=actor, action="identity.unbind", openid=openid,
                       details={**before.masked(), "reason": reason}, at=at)
    return before


async def _must_get(conn: AsyncConnection, openid: str) -> Binding:
    binding = await get(conn, openid)
    if binding is None:
        raise NotBound("this student has no identity binding")
    return binding


async def _refuse_taken(conn: AsyncConnection, keyring: Keyring, id_number: str, openid: str) -> None:
    holder = await find_openid(conn, keyring, id_number)
    if holder is not None and holder != openid:
        raise IdNumberTaken("this ID number is already bound to another student")


async def _guarded(
    conn: AsyncConnection, keyring: Keyring, id_number: str, openid: str, stmt: sa.Executable,
) -> None:
    """Run the write in a savepoint so a lost race becomes a clear error, not an aborted transaction."""
    try:
        async with conn.begin_nested():
            await conn.execute(stmt)
        return
    except IntegrityError:
        pass  # handled below, outside the except block, so the driver error (with its bound
        # parameters) is not chained onto what we raise
    await _refuse_taken(conn, keyring, id_number, openid)
    raise AlreadyBound("this student already has an identity binding; change it instead")
