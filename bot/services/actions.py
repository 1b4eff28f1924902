"""The actions dialogs name: validation and lookups before a step, SQL writes after it.

Each prepare action returns a payload for the dialog's conditions; a refused input carries the
template that explains why (``error_template`` + ``error``). Effects write durable facts; the session
in Redis only remembers where the student is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.privacy import mask_openid
from bot.services.identity import IdentityVerifier, IdType, Outcome, normalise_name, validate_id
from bot.services.identity.documents import CHINA_TZ
from bot.services.schools import SchoolIndex, clear_winner, normalise_city, normalise_province, parse_enrolment
from dialogs.actions import Call, ProcedureStatus
from dialogs.engine import Effect
from dialogs.spec import Say
from storage.sql import audit, identity, links, students, verifications
from storage.sql.db import Database
from storage.sql.identity import IdentityInput, PiiCodec

log = logging.getLogger("bot.actions")
CONSENT_VERSION = "2026-11"
PENDING_OUTCOMES = {Outcome.NO_RECORD, Outcome.UNSUPPORTED_TYPE}
RETRY_OUTCOMES = {Outcome.UPSTREAM_ERROR, Outcome.RATE_LIMITED}
Prepare = Callable[[Call], Awaitable[Mapping[str, Any]]]
Apply = Callable[[Effect, Call], Awaitable[None]]
Start = Callable[[Call], Awaitable[tuple[str, dict[str, Any]] | None]]


class ActionParts(Protocol):
    @property
    def prepares(self) -> Mapping[str, Prepare]: ...

    @property
    def effects(self) -> Mapping[str, Apply]: ...

    @property
    def starts(self) -> Mapping[str, Start]: ...

    async def status(self, openid: str) -> list[ProcedureStatus]: ...


class SharedStatus(Protocol):
    """A part whose status lines can be read inside a transaction another part opened."""

    db: Database

    async def status_in(self, conn: AsyncConnection, openid: str) -> list[ProcedureStatus]: ...


class CompositeActions:
    """dialogs.actions.Actions over several parts (records, procedures): one name, one owner."""

    def __init__(self, *parts: ActionParts) -> None:
        self.parts = parts
        self.prepares = {k: v for p in parts for k, v in p.prepares.items()}
        self.effects = {k: v for p in parts for k, v in p.effects.items()}
        self.starts = {k: v for p in parts for k, v in p.starts.items()}
        self._shared = _sharing(parts)

    def names(self) -> set[str]:
        """Every action offered (checked against the dialog definitions at start-up)."""
        return set(self.prepares) | set(self.effects) | set(self.starts)

    async def prepare(self, name: str, call: Call) -> Mapping[str, Any]:
        return await self.prepares[name](call)

    async def apply(self, effect: Effect, call: Call) -> None:
        await self.effects[effect.name](effect, call)

    async def start(self, name: str, call: Call) -> tuple[str, dict[str, Any]] | None:
        return await self.starts[name](call)

    async def status(self, openid: str) -> list[ProcedureStatus]:
        """Every part's lines, in part order; parts that can share read in one transaction.

        One read instead of one per part: each read costs a BEGIN, a COMMIT and a pool reset, all
        aiosqlite thread hops; sharing cut a status lookup's CPU by about a quarter on SQLite.
        """
        if not self._shared:
            return [line for part in self.parts for line in await part.status(openid)]
        found: list[ProcedureStatus] = []
        async with next(iter(self._shared.values())).db.read() as conn:
            for i, part in enumerate(self.parts):
                own = self._shared.get(i)
                found += await (own.status_in(conn, openid) if own is not None else part.status(openid))
        return found


def _sharing(parts: tuple[ActionParts, ...]) -> dict[int, SharedStatus]:
    """The parts (by position) that read their status in one transaction: on the first one's database."""
    able = {i: cast(SharedStatus, p) for i, p in enumerate(parts) if callable(getattr(p, "status_in", None))}
    first = next(iter(able.values()), None)
    return {i: p for i, p in able.items() if first is not None and p.db is first.db}


def refused(reply: Say | None) -> dict[str, Any]:
    if reply is None:
        return {"ok": False}
    return {"ok": False, "error_template": reply.template, "error": dict(reply.variables)}


@dataclass
class RecordActions:
    """The production implementation of dialogs.actions.Actions, on SQL records."""

    db: Database
    codec: PiiCodec
    verifier: IdentityVerifier
    schools: SchoolIndex
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.prepares: dict[str, Prepare] = {
            "check_name": self.check_name, "check_id": self.check_id, "verify_identity": self.verify_identity,
            "match_province": self.match_province, "match_city": self.match_city,
            "match_school": self.match_school, "parse_cohort": self.parse_cohort,
        }
        self.effects: dict[str, Apply] = {
            "record_consent": self.record_consent, "save_binding": self.save_binding, "unbind": self.unbind,
            "save_link": self.save_link, "follow": self.follow, "unfollow": self.unfollow,
        }
        self.starts: dict[str, Start] = {
            "bind_start": self.bind_start, "link_start": self.link_start,
        }

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), CHINA_TZ).date()

    def _at(self, call: Call) -> datetime:
        return datetime.fromtimestamp(call.now or self.clock(), UTC)

    # --- real-name binding -------------------------------------------------------------------

    @staticmethod
    def _id_type(call: Call) -> IdType:
        return IdType.parse(str(call.data.get("id_type", ""))) or IdType.RESIDENT_ID

    async def check_name(self, call: Call) -> Mapping[str, Any]:
        checked = normalise_name(str(call.payload.get("text", "")), self._id_type(call))
        return {"ok": True, "name": checked.name} if checked.ok else refused(checked.reply)

    async def check_id(self, call: Call) -> Mapping[str, Any]:
        checked = validate_id(self._id_type(call), str(call.payload.get("text", "")), today=self._today())
        return {"ok": True, "id_number": checked.number} if checked.ok else refused(checked.reply)

    async def verify_identity(self, call: Call) -> Mapping[str, Any]:
        number, name = str(call.data["id_number"]), str(call.data["name"])
        async with self.db.read() as conn:
            holder = await identity.find_openid(conn, self.codec.keyring, number)
        if holder is not None and holder != call.openid:
            log.warning("ID number already bound elsewhere; refused for %s", mask_openid(call.openid))
            return {"outcome": "taken"}
        result = await self.verifier.verify(self._id_type(call), name, number)
        meta = {"verified": result.outcome.value, "provider": result.provider, "request_id": result.request_id}
        if result.outcome is Outcome.MATCH:
            return {"outcome": "match", **meta}
        if result.outcome in PENDING_OUTCOMES:
            return {"outcome": "pending", **meta, "verified": "pending", "provider_outcome": result.outcome.value}
        if result.outcome in RETRY_OUTCOMES:
            return {"outcome": "retry", "error_template": result.reply.template, "error": dict(result.reply.variables)}
        return {"outcome": "mismatch", **meta}

    async def record_consent(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await students.ensure(conn, call.openid, self._at(call))
            await audit.record(conn, actor=call.openid, action="privacy.consent", openid=call.openid,
                               details={"version": CONSENT_VERSION}, at=self._at(call))

    async def save_binding(self, effect: Effect, call: Call) -> None:
        args = effect.args
        wanted = IdentityInput(str(self._id_type(Call(call.openid, {"id_type": args["id_type"]}))),
                               str(args["name"]), str(args["id_number"]))
        at = self._at(call)
        async with self.db.begin() as conn:
            binding = await identity.save(conn, self.codec, call.openid, wanted, actor=call.openid, at=at)
            if args["verified"] == "pending":
                # Staff decide (console); until then the binding has no verification row: "pending".
                await audit.record(conn, actor="verifier", action="identity.staff_review", openid=call.openid,
                                   details={"provider_outcome": str(call.payload.get("provider_outcome", ""))}, at=at)
                return
            details = {"request_id": str(call.payload.get("request_id", ""))}
            await verifications.record(conn, binding, outcome=str(args["verified"]),
                                       provider=str(call.payload.get("provider", "")), details=details, at=at)

    async def unbind(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await identity.unbind(conn, call.openid, actor=call.openid, reason="student", at=self._at(call))

    async def bind_start(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        async with self.db.read() as conn:
            binding = await identity.get(conn, call.openid)
            verified = await verifications.status(conn, binding) if binding else ""
        if binding is None:
            return None
        label = IdType(binding.id_type).label if binding.id_type in IdType.__members__.values() else binding.id_type
        return "bound", {"bound_type": label, "bound_name": binding.name_masked, "bound_id": binding.id_masked,
                         "verified": verified}

    # --- school linking ------------------------------------------------------------------------

    async def match_province(self, call: Call) -> Mapping[str, Any]:
        province = normalise_province(str(call.payload.get("text", "")))
        if province is None:
            return refused(Say("link_school/province_unknown", {"text": str(call.payload.get("text", ""))[:20]}))
        return {"ok": True, "province": province}

    async def match_city(self, call: Call) -> Mapping[str, Any]:
        city = normalise_city(str(call.payload.get("text", "")), str(call.data.get("province", "")) or None)
        if city is None:
            return refused(Say("link_school/city_unknown", {"province": call.data.get("province", "")}))
        return {"ok": True, "city": city}

    async def match_school(self, call: Call) -> Mapping[str, Any]:
        if "text" not in call.payload:
            return {}  # a numbered pick: the dialog resolves it from its candidates
        query = str(call.payload["text"])
        local = self.schools.subset(str(call.data.get("province") or "") or None,
                                    str(call.data.get("city") or "") or None)
        matches = local.match(query) or self.schools.match(query)
        winner = clear_winner(matches)
        picked = [winner] if winner else matches
        if not picked:
            return {"matches": [], **refused(Say("schools/no_match", {"query": query[:30]}))}
        return {"matches": [{"code": m.school.key, "name": m.school.name} for m in picked]}

    async def parse_cohort(self, call: Call) -> Mapping[str, Any]:
        parsed = parse_enrolment(str(call.payload.get("text", "")), today=self._today())
        if parsed.problem:
            return refused(parsed.reply)
        if parsed.cohort is None:
            return refused(Say("schools/enrolment_problem", {
                "problem": None, "missing": ["cohort"], "year": parsed.year,
                "entry_window": (0, 0), "graduation_window": (0, 0)}))
        return {"ok": True, "cohort": parsed.cohort.label,
                "purpose": parsed.purpose.label if parsed.purpose else ""}

    async def save_link(self, effect: Effect, call: Call) -> None:
        d = call.data
        code = str(d["school_code"])
        async with self.db.begin() as conn:
            await links.set_link(
                conn, call.openid, school_code=None if code.startswith("name:") else code,
                school_name=str(d["school_name"]), education_type=str(d["education_type"]), level=str(d["level"]),
                cohort=int(str(d["cohort"])[:4]), at=self._at(call),
            )
            await audit.record(conn, actor=call.openid, action="school.link", openid=call.openid,
                               details={"school": d["school_name"], "cohort": d["cohort"]}, at=self._at(call))

    async def link_start(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        async with self.db.read() as conn:
            link = await links.get(conn, call.openid)
        if link is None:
            return None
        return "linked", {"current": f"{link.school_name} · {link.education_type} {link.level} {link.cohort}级"}

    # --- follow state and status -------------------------------------------------------------------

    async def follow(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await students.follow(conn, call.openid, self._at(call))

    async def unfollow(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await students.unfollow(conn, call.openid, self._at(call))

    async def status(self, openid: str) -> list[ProcedureStatus]:
        async with self.db.read() as conn:
            return await self.status_in(conn, openid)

    async def status_in(self, conn: AsyncConnection, openid: str) -> list[ProcedureStatus]:
        binding = await identity.get(conn, openid)
        verified = await verifications.status(conn, binding) if binding else ""
        link = await links.get(conn, openid)
        return [_binding_status(binding is not None, verified), _link_status(link)]


def _binding_status(bound: bool, verified: str) -> ProcedureStatus:
    if not bound:
        return ProcedureStatus("bind", "实名认证", False, "未完成", "回复「实名认证」绑定身份")
    if verified == "match":
        return ProcedureStatus("bind", "实名认证", True, "已核验")
    return ProcedureStatus("bind", "实名认证", False, "等待老师核对", "核对结果会通过公众号通知你")


def _link_status(link: links.SchoolLink | None) -> ProcedureStatus:
    if link is None:
        return ProcedureStatus("link_school", "关联学校", False, "未完成", "回复「关联学校」选择学校")
    return ProcedureStatus("link_school", "关联学校", True, f"{link.school_name} {link.level}")
