"""Real-name binding: document types, number and name validation, and pluggable verification.

Pure and synchronous except :meth:`IdentityVerifier.verify`; no storage, no dialogs. See
docs/identity.md.
"""

from bot.services.identity.cache import (
    DEFAULT_TTLS,
    CachingVerifier,
    KeyValueStore,
    MemoryKeyValue,
    RedisKeyValue,
    verification_key,
)
from bot.services.identity.documents import (
    IdCheck,
    IdProblem,
    IdType,
    check_character,
    china_today,
    normalise_number,
    validate_id,
)
from bot.services.identity.names import NameCheck, NameProblem, normalise_name
from bot.services.identity.sandbox import SandboxVerifier, make_test_id
from bot.services.identity.verify import AUTO_VERIFIED, IdentityVerifier, Outcome, Verification

__all__ = [
    "AUTO_VERIFIED",
    "DEFAULT_TTLS",
    "CachingVerifier",
    "IdCheck",
    "IdProblem",
    "IdType",
    "IdentityVerifier",
    "KeyValueStore",
    "MemoryKeyValue",
    "NameCheck",
    "NameProblem",
    "Outcome",
    "RedisKeyValue",
    "SandboxVerifier",
    "Verification",
    "check_character",
    "china_today",
    "make_test_id",
    "normalise_name",
    "normalise_number",
    "validate_id",
    "verification_key",
]
