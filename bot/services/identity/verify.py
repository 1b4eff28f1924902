"""Real-name verification: one interface in front of whatever provider checks name + ID number.

Every commercial two-factor API has the same shape (reference §5): name and mainland ID number in,
one of a few outcomes out. Providers cover mainland resident IDs only, so other document types
come back ``unsupported_type`` and go to staff review. Provider result codes are mapped to
outcomes in tables here, so an adapter is a thin HTTP call plus a table lookup.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.services.identity.documents import IdType
from bot.services.text import render
from dialogs.spec import Say

AUTO_VERIFIED = frozenset({IdType.RESIDENT_ID})


class Outcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NO_RECORD = "no_record"
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED_TYPE = "unsupported_type"
    UPSTREAM_ERROR = "upstream_error"
    RATE_LIMITED = "rate_limited"

    @property
    def final(self) -> bool:
        """A verdict about the person (worth remembering), not a failure to get one."""
        return self not in (Outcome.UPSTREAM_ERROR, Outcome.RATE_LIMITED)

    @property
    def needs_review(self) -> bool:
        return self is Outcome.UNSUPPORTED_TYPE


@dataclass(frozen=True, slots=True)
class Verification:
    """What a provider said. Holds no name or ID number, so it may be logged and cached as is."""

    outcome: Outcome
    provider: str
    checked_at: datetime
    provider_code: str = ""
    request_id: str = ""
    billed: bool = False
    retry_after: float | None = None  # seconds, for rate_limited
    cached: bool = field(default=False, compare=False)

    @property
    def reply(self) -> Say:
        return Say("identity/verification", {"outcome": self.outcome.value})

    @property
    def message(self) -> str:
        return render(self.reply)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("cached")
        data["checked_at"] = self.checked_at.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Verification:
        data = json.loads(text)
        data["outcome"] = Outcome(data["outcome"])
        data["checked_at"] = datetime.fromisoformat(data["checked_at"])
        return cls(**data)

    def from_cache(self) -> Verification:
        """The same verdict served again: nothing was billed this time."""
        return replace(self, cached=True, billed=False)


class IdentityVerifier(Protocol):
    async def verify(self, id_type: IdType, name: str, id_number: str) -> Verification: ...


# Tencent Cloud FaceID IdCardVerification ``Result`` (reference §5). Only 0 and -1 are billed.
TENCENT_FACEID = {
    "0": Outcome.MATCH,
    "-1": Outcome.MISMATCH,
    "-2": Outcome.INVALID_INPUT,  # invalid ID number
    "-3": Outcome.INVALID_INPUT,  # invalid name
    "-4": Outcome.UPSTREAM_ERROR,  # authority database error
    "-5": Outcome.NO_RECORD,
    "-6": Outcome.UPSTREAM_ERROR,  # authority database upgrading
    "-7": Outcome.RATE_LIMITED,  # daily limit reached
}
TENCENT_BILLED = frozenset({"0", "-1"})

# Alibaba Cloud Id2MetaStandardVerify ``ResultObject.BizCode``; HTTP errors map separately.
ALIYUN_ID2META = {"1": Outcome.MATCH, "2": Outcome.MISMATCH, "3": Outcome.NO_RECORD}
ALIYUN_HTTP = {400: Outcome.INVALID_INPUT, 401: Outcome.INVALID_INPUT, 402: Outcome.UPSTREAM_ERROR,
               403: Outcome.RATE_LIMITED, 500: Outcome.UPSTREAM_ERROR}


def outcome_for(table: dict[str, Outcome], code: str) -> Outcome:
    """Unknown codes are upstream errors: never cached, never shown to the student as a verdict."""
    return table.get(code, Outcome.UPSTREAM_ERROR)
