"""Identity numbers, names and verification. Every ID here is synthetic: a made-up body plus the
check character computed by the code under test (and cross-checked against python-stdnum)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from bot.services.identity import (
    CachingVerifier,
    IdProblem,
    IdType,
    MemoryKeyValue,
    NameProblem,
    Outcome,
    RedisKeyValue,
    SandboxVerifier,
    Verification,
    check_character,
    make_test_id,
    normalise_name,
    validate_id,
    verification_key,
)
from bot.services.identity.documents import CHINA_TZ
from bot.services.identity.verify import ALIYUN_ID2META, TENCENT_FACEID, outcome_for
from storage.keys import KeyBuilder
from tests.fixtures.services import free_port

TODAY = date(2026, 5, 1)
GOOD = make_test_id("430102", "19990101", "123")
SECRET = b"test-secret-of-32-bytes-length!!"
R, HMT, HKMO, TW, PP = (IdType.RESIDENT_ID, IdType.HMT_RESIDENCE, IdType.HK_MO_PERMIT, IdType.TW_PERMIT,
                        IdType.PASSPORT)


def check(id_type: IdType, raw: str) -> IdProblem | None:
    return validate_id(id_type, raw, today=TODAY).problem


def other_check_char(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


# --- checksum -------------------------------------------------------------------------------------

bodies = st.builds(
    lambda region, born, seq: region + born.strftime("%Y%m%d") + seq,
    st.sampled_from(["110101", "430102", "420300", "140100", "652301", "810000"]),
    st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31)),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)


@given(bodies)
def test_check_character_agrees_with_stdnum_and_the_weighted_sum(body: str) -> None:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    expected = "0123456789X"[(12 - total % 11) % 11]
    # stdnum drops the last character of what it is given: it expects the whole number.
    assert check_character(body) == expected == ric.calc_check_digit(body + "?")


@given(bodies)
def test_a_number_with_its_check_character_round_trips(body: str) -> None:
    id_type = HMT if body.startswith("81") else R
    number = body + check_character(body)
    result = validate_id(id_type, number.lower(), today=TODAY)
    assert result.ok and result.number == number
    assert result.birth_date == date(int(body[6:10]), int(body[10:12]), int(body[12:14]))


@given(bodies, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_is_caught(body: str, position: int, shift: int) -> None:
    number = body + check_character(body)
    changed = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1:]
    assert not validate_id(HMT if body.startswith("81") else R, changed, today=TODAY).ok


@given(bodies, st.integers(14, 15))
def test_swapping_two_different_neighbours_in_the_sequence_is_caught(body: str, position: int) -> None:
    number = body + check_character(body)
    a, b = number[position], number[position + 1]
    swapped = number[:position] + b + a + number[position + 2:]
    assert a == b or check(HMT if body.startswith("81") else R, swapped) is IdProblem.BAD_CHECKSUM


# --- validation errors, one case each ------------------------------------------------------------

ERROR_CASES = [
    (R, "   ", IdProblem.EMPTY),
    (R, GOOD[:6] + "O" + GOOD[7:], IdProblem.BAD_CHARACTERS),
    (R, GOOD[:17] + "Y", IdProblem.BAD_CHARACTERS),
    (R, GOOD[:17], IdProblem.WRONG_LENGTH),
    (R, GOOD + "1", IdProblem.WRONG_LENGTH),
    (R, "430102990101123", IdProblem.LEGACY_15_DIGIT),
    (HKMO, "X12345678", IdProblem.BAD_PREFIX),
    (R, make_test_id("990102"), IdProblem.UNKNOWN_REGION),
    (HMT, make_test_id("840000"), IdProblem.UNKNOWN_REGION),
    (R, make_test_id("810000"), IdProblem.TYPE_MISMATCH),
    (HMT, GOOD, IdProblem.TYPE_MISMATCH),
    (R, make_test_id(born="19990230"), IdProblem.INVALID_BIRTH_DATE),
    (R, make_test_id(born="18991231"), IdProblem.INVALID_BIRTH_DATE),
    (R, make_test_id(born="20260502"), IdProblem.FUTURE_BIRTH_DATE),
    (R, make_test_id(born="20120502"), IdProblem.TOO_YOUNG),
    (R, other_check_char(GOOD), IdProblem.BAD_CHECKSUM),
    (HKMO, "H1234A678", IdProblem.BAD_CHARACTERS),
    (HKMO, "H1234567", IdProblem.WRONG_LENGTH),
    (TW, "1234567", IdProblem.WRONG_LENGTH),
    (TW, "1234567A", IdProblem.BAD_CHARACTERS),
    (PP, "E1234", None),
    (PP, "E12#45678", IdProblem.BAD_CHARACTERS),
    (PP, "E12", IdProblem.WRONG_LENGTH),
]


@pytest.mark.parametrize(("id_type", "raw", "problem"), ERROR_CASES)
def test_each_problem_is_named(id_type: IdType, raw: str, problem: IdProblem | None) -> None:
    result = validate_id(id_type, raw, today=TODAY)
    assert result.problem is problem
    assert bool(result.message) is (problem is not None)


def test_every_problem_has_a_case_and_its_own_message() -> None:
    results = [validate_id(t, raw, today=TODAY) for t, raw, _ in ERROR_CASES]
    assert {r.problem for r in results if r.problem} == set(IdProblem)
    by_problem = {r.problem: r.message for r in results if r.problem}
    assert len(set(by_problem.values())) == len(IdProblem)


def test_the_message_points_at_the_wrong_character() -> None:
    result = validate_id(R, GOOD[:6] + "O" + GOOD[7:], today=TODAY)
    assert result.position == 7 and "第7位" in result.message and "O" in result.message
    assert "最后一位" in validate_id(R, GOOD[:17] + "Y", today=TODAY).message
    mismatch = validate_id(R, make_test_id("810000"), today=TODAY)
    assert mismatch.suggested_type is HMT and "港澳台居民居住证" in mismatch.message
    assert "18位" in validate_id(R, GOOD[:17], today=TODAY).message


def test_birth_date_checks_use_the_injected_day() -> None:
    number = make_test_id(born="20260502")
    assert check(R, number) is IdProblem.FUTURE_BIRTH_DATE
    assert validate_id(R, number, today=date(2045, 1, 1)).ok


def test_input_is_normalised() -> None:
    messy = " ４３０１０２ 1999-0101 " + GOOD[14:].lower()
    result = validate_id(R, messy, today=TODAY)
    assert result.ok and result.number == GOOD
    with_x = make_test_id(sequence="002")
    assert with_x.endswith("X") and validate_id(R, with_x.lower(), today=TODAY).number == with_x
    assert validate_id(HKMO, "ｈ12345678", today=TODAY).number == "H12345678"
    assert validate_id(HKMO, "M1234567801", today=TODAY).ok
    assert validate_id(TW, "1234 5678", today=TODAY).ok
    assert validate_id(PP, "ea1234567", today=TODAY).number == "EA1234567"


def test_region_is_advisory() -> None:
    assert validate_id(R, GOOD, today=TODAY).region == "湖南省长沙市芙蓉区"
    unknown_county = validate_id(R, make_test_id("439999"), today=TODAY)
    assert unknown_county.ok and unknown_county.region is None
    assert validate_id(HMT, make_test_id("820000"), today=TODAY).region == "澳门特别行政区"


def test_repr_never_shows_the_number() -> None:
    result = validate_id(R, GOOD, today=TODAY)
    assert GOOD not in repr(result) and GOOD[-4:] in repr(result)


def test_id_types_parse_codes_labels_and_common_names() -> None:
    assert IdType.parse("resident_id") is R
    assert IdType.parse("港澳居民来往内地通行证") is HKMO
    assert IdType.parse("台胞证") is TW and IdType.parse("身份证") is R and IdType.parse("护照") is PP
    assert IdType.parse("驾驶证") is None
    assert [t.label for t in IdType] == ["居民身份证", "港澳台居民居住证", "港澳居民来往内地通行证",
                                         "台湾居民来往大陆通行证", "护照"]


# --- names ---------------------------------------------------------------------------------------

NAME_CASES = [
    ("张三", R, "张三", None),
    (" 张　三 ", R, "张三", None),
    ("阿卜杜・热依木", R, "阿卜杜·热依木", None),
    ("阿卜杜•热依木", R, "阿卜杜·热依木", None),
    ("阿卜杜‧热依木", R, "阿卜杜·热依木", None),
    ("阿卜杜．热依木", R, "阿卜杜·热依木", None),
    ("阿卜杜。热依木", R, "阿卜杜·热依木", None),
    ("阿卜杜.热依木", R, "阿卜杜·热依木", None),
    ("王䶮", R, "王䶮", None),  # extension A
    ("𠀀明", R, "𠀀明", None),  # extension B, outside the BMP
    ("李\U00030000", R, "李\U00030000", None),  # extension G
    ("张\u200b三", R, "张三", None),  # zero-width space pasted from a chat
    ("⼈民", R, "人民", None),  # Kangxi radical from a PDF
    ("o’brien  mary-jane", PP, "O'BRIEN MARY-JANE", None),
    ("José García", HKMO, "JOSÉ GARCÍA", None),
    ("陈大文", HKMO, "陈大文", None),
    ("", R, "", NameProblem.EMPTY),
    ("张", R, "张", NameProblem.TOO_SHORT),
    ("张" * 41, R, "张" * 41, NameProblem.TOO_LONG),
    ("张3", R, "张3", NameProblem.BAD_CHARACTERS),
    ("张\ue000", R, "张\ue000", NameProblem.PRIVATE_USE),
    ("·张三", R, "·张三", NameProblem.BAD_DOT),
    ("张··三", R, "张··三", NameProblem.BAD_DOT),
    ("John 张", PP, "John 张", NameProblem.MIXED_SCRIPTS),
    ("John Smith", R, "John Smith", NameProblem.LATIN_NOT_ALLOWED),
    ("JOHN.", PP, "JOHN.", NameProblem.BAD_CHARACTERS),
    ("J", PP, "J", NameProblem.TOO_SHORT),
]


@pytest.mark.parametrize(("raw", "id_type", "name", "problem"), NAME_CASES)
def test_names(raw: str, id_type: IdType, name: str, problem: NameProblem | None) -> None:
    result = normalise_name(raw, id_type)
    assert (result.name, result.problem) == (name, problem)
    assert bool(result.message) is (problem is not None)


def test_every_name_problem_has_a_case_and_its_own_message() -> None:
    messages = {normalise_name(raw, t).problem: normalise_name(raw, t).message for raw, t, _, p in NAME_CASES if p}
    assert set(messages) == set(NameProblem)
    assert len(set(messages.values())) == len(NameProblem)


def test_name_problem_names_the_character() -> None:
    result = normalise_name("张3", R)
    assert result.position == 2 and "3" in result.message
    assert "张" not in repr(normalise_name("张三丰", R)).replace("张*", "")


# --- verification -------------------------------------------------------------------------------

def fixed_clock() -> datetime:
    return datetime(2026, 5, 1, 9, 30, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(("id_type", "name", "number", "outcome", "code"), [
    (R, "张三", GOOD, Outcome.MATCH, "0"),
    (R, "张三", make_test_id(sequence="996"), Outcome.MISMATCH, "-1"),
    (R, "张三", make_test_id(sequence="997"), Outcome.NO_RECORD, "-5"),
    (R, "张三", make_test_id(sequence="998"), Outcome.RATE_LIMITED, "-7"),
    (R, "张三", make_test_id(sequence="999"), Outcome.UPSTREAM_ERROR, "-4"),
    (R, "张三", other_check_char(GOOD), Outcome.INVALID_INPUT, "-2"),
    (R, "张3", GOOD, Outcome.INVALID_INPUT, "-3"),
    (HMT, "张三", make_test_id("810000"), Outcome.UNSUPPORTED_TYPE, ""),
    (PP, "JOHN SMITH", "E12345678", Outcome.UNSUPPORTED_TYPE, ""),
])
async def test_sandbox_rules(id_type: IdType, name: str, number: str, outcome: Outcome, code: str) -> None:
    result = await SandboxVerifier(fixed_clock).verify(id_type, name, number)
    assert (result.outcome, result.provider_code, result.provider) == (outcome, code, "sandbox")
    assert result.billed is (code in ("0", "-1"))
    assert (result.retry_after is not None) is (outcome is Outcome.RATE_LIMITED)
    assert result.checked_at == fixed_clock()


def test_outcomes_have_their_own_messages_and_flags() -> None:
    messages = {o: Verification(o, "x", fixed_clock()).message for o in Outcome}
    assert all(messages.values()) and len(set(messages.values())) == len(Outcome)
    assert [o for o in Outcome if not o.final] == [Outcome.UPSTREAM_ERROR, Outcome.RATE_LIMITED]
    assert [o for o in Outcome if o.needs_review] == [Outcome.UNSUPPORTED_TYPE]


def test_provider_tables_send_unknown_codes_to_upstream_error() -> None:
    assert outcome_for(TENCENT_FACEID, "-5") is Outcome.NO_RECORD
    assert outcome_for(ALIYUN_ID2META, "2") is Outcome.MISMATCH
    assert outcome_for(TENCENT_FACEID, "-99") is Outcome.UPSTREAM_ERROR


def test_verification_round_trips_through_json_without_personal_data() -> None:
    original = Verification(Outcome.MATCH, "sandbox", fixed_clock(), "0", "req-1", billed=True)
    text = original.to_json()
    assert Verification.from_json(text) == original
    assert "张" not in text and GOOD not in text


def test_cache_key_is_an_hmac_of_normalised_inputs() -> None:
    key = verification_key(SECRET, R, "张三", GOOD)
    assert len(key) == 64 and GOOD not in key
    assert verification_key(SECRET, R, " 张三 ", "４３０１０２" + GOOD[6:].lower()) == key
    assert verification_key(SECRET[::-1], R, "张三", GOOD) != key
    assert verification_key(SECRET, R, "张四", GOOD) != key


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CachingVerifier(SandboxVerifier(), MemoryKeyValue(), b"short")


async def test_a_verdict_is_served_from_the_cache_without_billing() -> None:
    sandbox = SandboxVerifier(fixed_clock)
    verifier = CachingVerifier(sandbox, MemoryKeyValue(), SECRET)
    first = await verifier.verify(R, "张三", GOOD)
    second = await verifier.verify(R, "张三", GOOD)
    assert sandbox.calls == 1
    assert (first.cached, first.billed) == (False, True)
    assert (second.cached, second.billed, second.outcome) == (True, False, Outcome.MATCH)


async def test_errors_are_not_cached() -> None:
    sandbox = SandboxVerifier(fixed_clock)
    verifier = CachingVerifier(sandbox, MemoryKeyValue(), SECRET)
    for sequence in ("998", "999"):
        number = make_test_id(sequence=sequence)
        await verifier.verify(R, "张三", number)
        await verifier.verify(R, "张三", number)
    assert sandbox.calls == 4


async def test_each_outcome_lives_for_its_own_ttl() -> None:
    now = [0.0]
    sandbox = SandboxVerifier(fixed_clock)
    ttls = {Outcome.MATCH: 100, Outcome.MISMATCH: 10}
    verifier = CachingVerifier(sandbox, MemoryKeyValue(lambda: now[0]), SECRET, ttls)
    mismatch = make_test_id(sequence="996")
    await verifier.verify(R, "张三", GOOD)
    await verifier.verify(R, "张三", mismatch)
    now[0] = 50.0
    await verifier.verify(R, "张三", GOOD)
    await verifier.verify(R, "张三", mismatch)
    assert sandbox.calls == 3  # the mismatch expired, the match did not


async def test_concurrent_calls_share_one_upstream_call() -> None:
    sandbox = SandboxVerifier(fixed_clock)
    verifier = CachingVerifier(sandbox, MemoryKeyValue(), SECRET)
    results = await asyncio.gather(*(verifier.verify(R, "张三", GOOD) for _ in range(5)))
    assert sandbox.calls == 1
    assert {r.outcome for r in results} == {Outcome.MATCH}
    assert sum(not r.cached for r in results) == 1


async def test_redis_cache_holds_no_personal_data(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    keys = KeyBuilder(redis_prefix, "wxtest")
    sandbox = SandboxVerifier(fixed_clock)
    verifier = CachingVerifier(sandbox, RedisKeyValue(redis_client, keys), SECRET)
    await verifier.verify(R, "张三", GOOD)
    again = await verifier.verify(R, "张三", GOOD)
    assert sandbox.calls == 1 and again.cached
    stored = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    assert stored == [keys.identity_verification(verification_key(SECRET, R, "张三", GOOD)).encode()]
    raw = await redis_client.get(stored[0])
    assert isinstance(raw, bytes)
    value = raw.decode()
    assert GOOD not in stored[0].decode() + value and "张" not in value
    assert 0 < await redis_client.ttl(stored[0]) <= 30 * 24 * 3600


async def test_a_cache_that_is_down_does_not_stop_verification() -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    sandbox = SandboxVerifier(fixed_clock)
    verifier = CachingVerifier(sandbox, RedisKeyValue(client, KeyBuilder("gbt", "wxtest")), SECRET)
    try:
        result = await verifier.verify(R, "张三", GOOD)
    finally:
        await client.aclose()
    assert result.outcome is Outcome.MATCH and sandbox.calls == 1


async def test_a_corrupt_cache_entry_is_a_miss() -> None:
    store = MemoryKeyValue()
    await store.set(verification_key(SECRET, R, "张三", GOOD), "{not json", 60)
    sandbox = SandboxVerifier(fixed_clock)
    result = await CachingVerifier(sandbox, store, SECRET).verify(R, "张三", GOOD)
    assert result.outcome is Outcome.MATCH and sandbox.calls == 1
