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
from storage.sql.base import DialectInsert, PreparedUpsert, utcnow
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
_HOLDER = sa.select(tb.c.openid).where(tb.c.id_hmac.in_(sa.bindparam("hashes", expanding=True))).limit(1)


async def get(conn: AsyncConnection, openid: str) -> Binding | None:
    row = (await conn.execute(_GET, {"openid": openid})).first()
    return Binding(**row._mapping) if row else None


async def find_openid(conn: AsyncConnection, keyring: Keyring, id_number: str) -> str | None:
    """Which student holds this ID number, by keyed hash (under any key of the keyring)."""
    hashes = list(keyring.lookup_hashes(id_number))
    return (await conn.execute(_HOLDER, {"hashes": hashes})).scalar_one_or_none()


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
    binding, created = await _insert_or_existing(conn, codec, openid, identity, actor=actor, at=at or utcnow())
    if not created:
        raise AlreadyBound("this student already has an identity binding; change it instead")
    return binding


async def change(
    conn: AsyncConnection, codec: PiiCodec, openid: str, identity: IdentityInput, *,
    actor: str, at: datetime | None = None,
) -> Binding:
    before = await _must_get(conn, openid)
    return await _change(conn, codec, before, identity, actor=actor, at=at or utcnow())


async def save(
    conn: AsyncConnection, codec: PiiCodec, openid: str, identity: IdentityInput, *,
    actor: str, at: datetime | None = None,
) -> Binding:
    """Bind, or change the binding the student already has (a student binding again), as one would
    call :func:`bind` or :func:`change` after :func:`get`; a first binding takes no read at all."""
    at = at or utcnow()
    binding, created = await _insert_or_existing(conn, codec, openid, identity, actor=actor, at=at)
    return binding if created else await _change(conn, codec, binding, identity, actor=actor, at=at)


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


_INSERTED = ("openid", "id_type", "name_enc", "name_masked", "id_enc", "id_masked", "id_hmac", "key_id",
             "version", "created_at", "updated_at")


def _insert_unless_held(insert: DialectInsert) -> sa.Executable:
    """The new row, unless another student holds the number under any key of the keyring (rows not
    yet rotated carry an older key's hash, which the unique index cannot see). ON CONFLICT DO NOTHING
    (any unique index: openid, id_hmac) makes "already bound" and a lost race for the number return
    no row instead of aborting the transaction. With the students row made in the same statement
    (:func:`students.ensuring`), one statement where the ensure, a read, a pre-check, a savepoint around
    the insert and a re-read took seven."""
    params = {c: sa.bindparam(c, type_=tb.c[c].type) for c in _INSERTED}
    held_elsewhere = sa.exists().where(tb.c.id_hmac.in_(sa.bindparam("hashes", expanding=True)),
                                       tb.c.openid != params["openid"])
    row = sa.select(*params.values()).where(~held_elsewhere)
    return (students.ensuring(insert, params["openid"], params["created_at"]).from_select(list(_INSERTED), row)
            .on_conflict_do_nothing().returning(*_BINDING_COLUMNS))


_INSERT = PreparedUpsert(tb, _insert_unless_held)
# The write of a change; its SET columns are the parameters named after columns.
_UPDATE = sa.update(tb).where(tb.c.openid == sa.bindparam("bound_openid")).returning(*_BINDING_COLUMNS)


async def _insert_or_existing(
    conn: AsyncConnection, codec: PiiCodec, openid: str, identity: IdentityInput, *, actor: str, at: datetime,
) -> tuple[Binding, bool]:
    """(the new binding, audited, True), or (the binding the student already has, False).

    Raises IdNumberTaken when another student holds the number, AlreadyBound when the insert lost a
    race to a row that is gone again.
    """
    await students.ensure_unless_ensuring(conn, openid, at)
    values = {**encode(codec, openid, identity), "openid": openid, "version": 1, "created_at": at,
              "updated_at": at, "hashes": list(codec.keyring.lookup_hashes(identity.id_number))}
    row = (await conn.execute(_INSERT.on(conn), values)).first()
    if row is None:
        existing = await get(conn, openid)
        if existing is not None:
            return existing, False
        await _refuse_taken(conn, codec.keyring, identity.id_number, openid)
        raise AlreadyBound("this student already has an identity binding; change it instead")
    binding = Binding(**row._mapping)
    await audit.record(conn, actor=actor, action="identity.bind", openid=openid, details=binding.masked(), at=at)
    return binding, True


async def _change(
    conn: AsyncConnection, codec: PiiCodec, before: Binding, identity: IdentityInput, *, actor: str, at: datetime,
) -> Binding:
    openid = before.openid
    await _refuse_taken(conn, codec.keyring, identity.id_number, openid)
    values = {**encode(codec, openid, identity), "version": before.version + 1, "updated_at": at,
              "bound_openid": openid}
    after = await _guarded_update(conn, codec.keyring, identity.id_number, openid, values)
    await audit.record(conn, actor=actor, action="identity.change", openid=openid,
                       details={"before": before.masked(), "after": after.masked()}, at=at)
    return after


async def _guarded_update(
    conn: AsyncConnection, keyring: Keyring, id_number: str, openid: str, values: dict[str, Any],
) -> Binding:
    """Run the write in a savepoint so a lost race becomes a clear error, not an aborted transaction."""
    try:
        async with conn.begin_nested():
            row = (await conn.execute(_UPDATE, values)).first()
    except IntegrityError:
        pass  # handled below, outside the except block, so the driver error (with its bound
        # parameters) is not chained onto what we raise
    else:
        if row is None:
            raise NotBound("this student has no identity binding")
        return Binding(**row._mapping)
    await _refuse_taken(conn, keyring, id_number, openid)
    raise AlreadyBound("this student already has an identity binding; change it instead")
