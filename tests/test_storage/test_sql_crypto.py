"""Field encryption and keyed lookup hashes (pure: no database needed)."""

from __future__ import annotations

import pytest

from storage.sql.crypto import Keyring, generate_key, normalise_id_number
from storage.sql.errors import KeyringError, UndecryptableValue

NUMBER = "11010120010203123X"


def test_round_trip_and_token_shape() -> None:
    ring = Keyring(generate_key())
    token = ring.encrypt("张三", "identity.name|o1")
    assert token.startswith(f"g1.{ring.current.kid}.")
    assert "张三" not in token
    assert ring.decrypt(token, "identity.name|o1") == "张三"
    assert ring.encrypt("张三", "identity.name|o1") != token  # fresh nonce each time


def test_token_moved_to_another_row_or_column_does_not_decrypt() -> None:
    ring = Keyring(generate_key())
    token = ring.encrypt(NUMBER, "identity.id_number|o1")
    for context in ("identity.id_number|o2", "identity.name|o1"):
        with pytest.raises(UndecryptableValue):
            ring.decrypt(token, context)


def test_tampered_token_is_refused() -> None:
    ring = Keyring(generate_key())
    token = ring.encrypt(NUMBER, "c")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(UndecryptableValue):
        ring.decrypt(flipped, "c")
    with pytest.raises(UndecryptableValue):
        ring.decrypt("plain text", "c")


def test_previous_key_decrypts_during_rotation_and_unknown_key_is_named() -> None:
    old, new = generate_key(), generate_key()
    token = Keyring(old).encrypt("李四", "c")
    rotating = Keyring(new, [old])
    assert rotating.decrypt(token, "c") == "李四"
    assert rotating.key_id_of(rotating.encrypt("李四", "c")) == rotating.current.kid
    with pytest.raises(UndecryptableValue, match=Keyring(old).current.kid):
        Keyring(new).decrypt(token, "c")


def test_lookup_hash_ignores_notation_but_not_the_number() -> None:
    ring = Keyring(generate_key())
    spaced = " １１０１０１ 20010203 123x "  # full-width digits, spaces, lower-case check letter
    assert normalise_id_number(spaced) == NUMBER
    assert ring.lookup_hash(spaced) == ring.lookup_hash(NUMBER)
    assert ring.lookup_hash("110101200102031248") != ring.lookup_hash(NUMBER)
    assert NUMBER not in ring.lookup_hash(NUMBER)


def test_lookup_hashes_cover_every_key_current_first() -> None:
    old, new = generate_key(), generate_key()
    rotating = Keyring(new, [old])
    assert rotating.lookup_hashes(NUMBER) == (Keyring(new).lookup_hash(NUMBER), Keyring(old).lookup_hash(NUMBER))
    assert Keyring(new).lookup_hash(NUMBER) != Keyring(old).lookup_hash(NUMBER)


@pytest.mark.parametrize("bad", ["", "short", "not base64 !!!", generate_key() + "AAAA"])
def test_malformed_key_is_refused(bad: str) -> None:
    with pytest.raises(KeyringError):
        Keyring(bad)


def test_repr_shows_key_ids_only() -> None:
    key = generate_key()
    ring = Keyring(key)
    assert key not in repr(ring) and ring.current.kid in repr(ring)
    assert key not in repr(ring.current)
