"""Identity bindings on both backends: encryption at rest, uniqueness by keyed hash, audit, rotation."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bot.privacy import mask_id, mask_name
from storage.sql import audit, identity, verifications
from storage.sql.crypto import Keyring, generate_key
from storage.sql.db import Database
from storage.sql.errors import AlreadyBound, IdNumberTaken, NotBound
from storage.sql.identity import IdentityInput, PiiCodec
from storage.sql.rotation import key_usage, rotate
from storage.sql.tables import metadata

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def synthetic_id(body17: str) -> str:
    """A made-up mainland ID number with a correct MOD 11-2 check character."""
    total = sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True))
    return body17 + "10X98765432"[total % 11]


ALICE = IdentityInput("mainland_id", "王小明", synthetic_id("11010120010203123"))
BOB = IdentityInput("mainland_id", "欧阳娜娜", synthetic_id("44030419990517456"))


async def _bind(db: Database, pii: PiiCodec, openid: str, who: IdentityInput) -> identity.Binding:
    async with db.begin() as conn:
        return await identity.bind(conn, pii, openid, who, actor="student")


async def test_bind_stores_masks_and_reveals_only_on_request(sql_db: Database, pii: PiiCodec) -> None:
    binding = await _bind(sql_db, pii, "o-alice", ALICE)
    assert binding.masked() == {"id_type": "mainland_id", "name_masked": mask_name(ALICE.name),
                                "id_masked": mask_id(ALICE.id_number)}
    assert ALICE.id_number not in repr(ALICE) and ALICE.name not in repr(ALICE)
    async with sql_db.read() as conn:
        assert await identity.reveal(conn, pii.keyring, "o-alice") == ALICE
        assert await identity.find_openid(conn, pii.keyring, ALICE.id_number.lower()) == "o-alice"
        assert await identity.find_openid(conn, pii.keyring, BOB.id_number) is None


async def test_same_id_number_for_another_student_is_refused_without_pii(
    sql_db: Database, pii: PiiCodec
) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    same_number = IdentityInput("mainland_id", "冒名者", " " + ALICE.id_number.lower() + " ")
    with pytest.raises(IdNumberTaken) as caught:
        await _bind(sql_db, pii, "o-mallory", same_number)
    text = str(caught.value) + repr(caught.value.args)
    assert ALICE.id_number[6:14] not in text and "o-alice" not in text
    assert caught.value.__cause__ is None
    async with sql_db.read() as conn:
        assert await identity.get(conn, "o-mallory") is None


async def test_unique_index_holds_even_without_the_pre_check(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    values = identity.encode(pii, "o-mallory", ALICE)
    with pytest.raises(sa.exc.IntegrityError):
        async with sql_db.begin() as conn:
            await conn.execute(sa.insert(metadata.tables["students"]).values(
                openid="o-mallory", following=True, created_at=sa.func.now(), updated_at=sa.func.now()))
            await conn.execute(sa.insert(metadata.tables["identity_bindings"]).values(
                **values, openid="o-mallory", version=1, created_at=sa.func.now(), updated_at=sa.func.now()))


async def test_racing_binds_of_one_number_leave_exactly_one_holder(sql_db: Database, pii: PiiCodec) -> None:
    # Every insert's NOT EXISTS check can pass before any commits; the unique index (ON CONFLICT DO
    # NOTHING) must turn the losers into IdNumberTaken (not a raw IntegrityError or an aborted transaction).
    results = await asyncio.gather(*(_bind(sql_db, pii, f"o-{n}", ALICE) for n in range(3)),
                                   return_exceptions=True)
    winners = [r for r in results if isinstance(r, identity.Binding)]
    losers = [r for r in results if not isinstance(r, identity.Binding)]
    assert len(winners) == 1 and all(isinstance(r, IdNumberTaken) for r in losers), results


async def test_second_bind_for_same_student_must_be_a_change(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    with pytest.raises(AlreadyBound):
        await _bind(sql_db, pii, "o-alice", BOB)
    async with sql_db.begin() as conn:
        with pytest.raises(NotBound):
            await identity.change(conn, pii, "o-nobody", BOB, actor="student")
        with pytest.raises(NotBound):
            await identity.unbind(conn, "o-nobody", actor="staff:li")


async def test_change_and_unbind_are_audited_with_masked_values(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    async with sql_db.begin() as conn:
        changed = await identity.change(conn, pii, "o-alice", BOB, actor="staff:li")
        assert changed.version == 2 and changed.id_masked == mask_id(BOB.id_number)
        await identity.unbind(conn, "o-alice", actor="staff:li", reason="student request")
    async with sql_db.read() as conn:
        trail = await audit.for_student(conn, "o-alice")
        assert await identity.get(conn, "o-alice") is None
    assert [(e.action, e.actor) for e in trail] == [
        ("identity.unbind", "staff:li"), ("identity.change", "staff:li"), ("identity.bind", "student")]
    assert trail[1].details["before"]["id_masked"] == mask_id(ALICE.id_number)
    assert trail[1].details["after"]["name_masked"] == mask_name(BOB.name)
    assert trail[0].details["reason"] == "student request"
    # The number is free again once unbound.
    await _bind(sql_db, pii, "o-bob", ALICE)


async def test_no_column_anywhere_holds_a_clear_name_or_id_number(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    async with sql_db.begin() as conn:
        await identity.change(conn, pii, "o-alice", BOB, actor="student")
        binding = await identity.get(conn, "o-alice")
        assert binding is not None
        await verifications.record(conn, binding, outcome="match", provider="sandbox")
    secrets = [ALICE.name, ALICE.id_number, BOB.name, BOB.id_number, BOB.id_number[6:14]]
    async with sql_db.read() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                dump = repr(tuple(row))
                assert not [s for s in secrets if s in dump], table.name


async def test_rotation_reencrypts_and_lookups_work_throughout(sql_db: Database) -> None:
    old, new = generate_key(), generate_key()
    before = PiiCodec(Keyring(old), mask_name, mask_id)
    during = PiiCodec(Keyring(new, [old]), mask_name, mask_id)
    await _bind(sql_db, before, "o-alice", ALICE)
    await _bind(sql_db, during, "o-bob", BOB)
    # An unrotated row still blocks its number under the new key.
    with pytest.raises(IdNumberTaken):
        await _bind(sql_db, during, "o-mallory", ALICE)
    report = await rotate(sql_db, during.keyring, batch=1)
    assert (report.rotated, report.unknown) == (1, {})
    after = Keyring(new)
    async with sql_db.read() as conn:
        assert await key_usage(conn) == {after.current.kid: 2}
        assert await identity.reveal(conn, after, "o-alice") == ALICE
        assert await identity.find_openid(conn, after, ALICE.id_number) == "o-alice"
    assert (await rotate(sql_db, during.keyring)).rotated == 0


async def test_rotation_reports_rows_under_a_key_it_does_not_hold(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    stranger = Keyring(generate_key(), [generate_key()])
    report = await rotate(sql_db, stranger)
    assert report.rotated == 0
    assert report.unknown == {pii.keyring.current.kid: 1}


async def test_verification_applies_to_the_binding_version_checked(sql_db: Database, pii: PiiCodec) -> None:
    binding = await _bind(sql_db, pii, "o-alice", ALICE)
    async with sql_db.begin() as conn:
        assert await verifications.status(conn, binding) == "pending"
        await verifications.record(conn, binding, outcome="mismatch", provider="sandbox")
        await verifications.record(conn, binding, outcome="match", provider="sandbox")
        assert await verifications.status(conn, binding) == "match"
        changed = await identity.change(conn, pii, "o-alice", BOB, actor="student")
        assert await verifications.status(conn, changed) == "pending"
        with pytest.raises(ValueError, match="outcome"):
            await verifications.record(conn, changed, outcome="probably", provider="sandbox")


async def test_save_binds_a_new_student_and_changes_a_bound_one(sql_db: Database, pii: PiiCodec) -> None:
    async with sql_db.begin() as conn:
        first = await identity.save(conn, pii, "o-alice", ALICE, actor="o-alice")
    async with sql_db.begin() as conn:
        again = await identity.save(conn, pii, "o-alice", BOB, actor="o-alice")
        assert await identity.get(conn, "o-alice") == again
    assert (first.version, again.version, again.id) == (1, 2, first.id)
    assert again.masked() == {"id_type": "mainland_id", "name_masked": mask_name(BOB.name),
                              "id_masked": mask_id(BOB.id_number)}
    async with sql_db.read() as conn:
        trail = await audit.for_student(conn, "o-alice")
        assert await identity.reveal(conn, pii.keyring, "o-alice") == BOB
    assert [e.action for e in trail] == ["identity.change", "identity.bind"]
    assert trail[0].details == {"before": first.masked(), "after": again.masked()}


async def test_save_refuses_a_number_another_student_holds(sql_db: Database, pii: PiiCodec) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    await _bind(sql_db, pii, "o-bob", BOB)
    for openid in ("o-bob", "o-mallory"):  # a change and a first binding
        with pytest.raises(IdNumberTaken) as caught:
            async with sql_db.begin() as conn:
                await identity.save(conn, pii, openid, ALICE, actor=openid)
        assert caught.value.__cause__ is None
    async with sql_db.read() as conn:
        assert await identity.find_openid(conn, pii.keyring, BOB.id_number) == "o-bob"
        assert await identity.get(conn, "o-mallory") is None


async def test_a_second_bind_is_refused_as_such_even_when_the_number_is_taken(
    sql_db: Database, pii: PiiCodec
) -> None:
    await _bind(sql_db, pii, "o-alice", ALICE)
    await _bind(sql_db, pii, "o-bob", BOB)
    with pytest.raises(AlreadyBound):
        await _bind(sql_db, pii, "o-bob", ALICE)
