"""A deterministic stand-in verifier for tests and the demo; it answers in Tencent FaceID codes.

Rules, in order (docs/identity.md has the table):

1. any type but the mainland resident ID → ``unsupported_type`` (staff review), as real providers;
2. a name that :func:`normalise_name` rejects → ``invalid_input`` (code -3);
3. a number that :func:`validate_id` rejects → ``invalid_input`` (code -2);
4. otherwise the sequence digits (positions 15–17) decide: 996 mismatch (-1), 997 no record (-5),
   998 rate limited (-7), 999 upstream error (-4); anything else matches (0).

Test IDs are built from made-up bodies with :func:`make_test_id`, never taken from real people.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from bot.services.identity.documents import CHINA_TZ, IdType, check_character, validate_id
from bot.services.identity.names import normalise_name
from bot.services.identity.verify import (
    AUTO_VERIFIED,
    TENCENT_BILLED,
    TENCENT_FACEID,
    Outcome,
    Verification,
    outcome_for,
)

SEQUENCE_CODES = {"996": "-1", "997": "-5", "998": "-7", "999": "-4"}
RATE_LIMIT_RETRY_AFTER = 60.0


def make_test_id(region: str = "430102", born: str = "19990101", sequence: str = "123") -> str:
    """A synthetic 18-character number with a correct check character (for tests and the demo)."""
    body = region + born + sequence
    return body + check_character(body)


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


class SandboxVerifier:
    provider = "sandbox"

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self.calls = 0  # how often the "upstream" was asked: tests check the cache with it

    async def verify(self, id_type: IdType, name: str, id_number: str) -> Verification:
        self.calls += 1
        now = self._clock()
        if id_type not in AUTO_VERIFIED:
            return Verification(Outcome.UNSUPPORTED_TYPE, self.provider, now)
        return self._answer(self._code(id_type, name, id_number, now.date()), now)

    def _code(self, id_type: IdType, name: str, id_number: str, today: date) -> str:
        if not normalise_name(name, id_type).ok:
            return "-3"
        if not validate_id(id_type, id_number, today=today).ok:
            return "-2"
        return SEQUENCE_CODES.get(id_number[14:17], "0")

    def _answer(self, code: str, now: datetime) -> Verification:
        outcome = outcome_for(TENCENT_FACEID, code)
        retry = RATE_LIMIT_RETRY_AFTER if outcome is Outcome.RATE_LIMITED else None
        return Verification(outcome, self.provider, now, provider_code=code,
                            request_id=f"sandbox-{self.calls}", billed=code in TENCENT_BILLED,
                            retry_after=retry)
