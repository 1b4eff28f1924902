"""Field-level protection of personal data at rest: AES-256-GCM tokens and keyed lookup hashes.

A data key is 32 random bytes written as URL-safe base64 (``generate_key()``). From it HKDF derives
three independent values: the AES-GCM key, the HMAC key for lookup hashes, and a short public key id.
Every ciphertext starts with the key id (``g1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>``), so a
keyring holding the current key and any previous ones can decrypt rows written under either while a
rotation re-encrypts them. The associated data binds a token to its purpose and row owner, so a
token copied into another column or another student's row does not decrypt.

Key material arrives here as plain strings from the composition root; nothing in this module reads
the environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.sql.errors import KeyringError, UndecryptableValue

TOKEN_VERSION = "g1"  # noqa: S105 - a format tag, not a secret
_NONCE_BYTES = 12
_ID_NOISE = re.compile(r"[\s\-()（）]")


def generate_key() -> str:
    """A fresh data key: 32 random bytes, URL-safe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def normalise_id_number(number: str) -> str:
    """Canonical form hashed for uniqueness: full-width folded, spaces/brackets/hyphens gone, upper case."""
    return _ID_NOISE.sub("", unicodedata.normalize("NFKC", number)).upper()


def _decode_key(secret: str) -> bytes:
    text = secret.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyringError("data key is not URL-safe base64") from exc
    if len(raw) != 32:
        raise KeyringError(f"data key must decode to 32 bytes, got {len(raw)}")
    return raw


def _derive(master: bytes, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gradbot/pii/" + purpose)
    return hkdf.derive(master)


@dataclass(frozen=True, slots=True)
class DataKey:
    kid: str
    aead: AESGCM = field(repr=False)
    mac_key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> DataKey:
        master = _decode_key(secret)
        kid = _derive(master, b"key-id")[:4].hex()
        return cls(kid, AESGCM(_derive(master, b"aes-gcm")), _derive(master, b"hmac-sha256"))

    def lookup_hash(self, normalised: str) -> str:
        return hmac.new(self.mac_key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


class Keyring:
    """The current data key (encrypts, hashes) plus previous keys (decrypt and look up only)."""

    def __init__(self, current: str, previous: Iterable[str] = ()) -> None:
        self.current = DataKey.from_secret(current)
        older = [DataKey.from_secret(p) for p in previous if p.strip()]
        self.previous = tuple(k for k in older if k.kid != self.current.kid)
        self._by_kid = {k.kid: k for k in (self.current, *self.previous)}

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.kid!r}, previous={[k.kid for k in self.previous]!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._by_kid)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.current.aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_VERSION}.{self.current.kid}.{body}"

    def decrypt(self, token: str, context: str) -> str:
        key, blob = self._split(token)
        try:
            plain = key.aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag as exc:
            raise UndecryptableValue(f"token under key {key.kid} failed authentication") from exc
        return plain.decode("utf-8")

    def key_id_of(self, token: str) -> str:
        return _parts(token)[1]

    def lookup_hash(self, id_number: str) -> str:
        return self.current.lookup_hash(normalise_id_number(id_number))

    def lookup_hashes(self, id_number: str) -> tuple[str, ...]:
        """One hash per key, current first: rows not yet rotated still match during a rotation."""
        normalised = normalise_id_number(id_number)
        return tuple(k.lookup_hash(normalised) for k in self._by_kid.values())

    def _split(self, token: str) -> tuple[DataKey, bytes]:
        _, kid, body = _parts(token)
        key = self._by_kid.get(kid)
        if key is None:
            raise UndecryptableValue(f"token written under key {kid}, which is not in the keyring")
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise UndecryptableValue("token body is not base64") from exc
        return key, blob


def _parts(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise UndecryptableValue("not a gradbot data token")
    return parts[0], parts[1], parts[2]
