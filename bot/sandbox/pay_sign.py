"""WeChat Pay v3 signatures as the platform makes and checks them (reference/pay-notify-identity.md §1.3, §2).

Requests: ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
timestamp="…",serial_no="…"`` over ``METHOD\\npath?query\\ntimestamp\\nnonce\\nbody\\n`` (merchant key).
Responses and notifications: ``Wechatpay-Signature`` over ``timestamp\\nnonce\\nbody\\n`` (platform key).
Notification resources: AES-256-GCM under the APIv3 key, 12-character nonce, Base64 of ciphertext+tag.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NONCE_CHARS = string.ascii_letters + string.digits


class BadAuthorization(ValueError):
    """The merchant's Authorization header is missing, malformed or wrongly signed."""


@dataclass(frozen=True, slots=True)
class Authorization:
    mchid: str
    nonce_str: str
    signature: str
    timestamp: int
    serial_no: str


def load_private(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    raw = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message.encode("utf-8"),
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_CHARS) for _ in range(length))


def parse_authorization(header: str) -> Authorization:
    schema, _, params = header.partition(" ")
    if schema != SCHEMA:
        raise BadAuthorization("unknown signature schema")
    values = dict(_PARAM.findall(params))
    try:
        return Authorization(values["mchid"], values["nonce_str"], values["signature"],
                             int(values["timestamp"]), values["serial_no"])
    except (KeyError, ValueError) as exc:
        raise BadAuthorization("incomplete Authorization header") from exc


def request_message(method: str, path_qs: str, auth: Authorization, body: str) -> str:
    return f"{method}\n{path_qs}\n{auth.timestamp}\n{auth.nonce_str}\n{body}\n"


def response_message(timestamp: str, nonce_str: str, body: str) -> str:
    return f"{timestamp}\n{nonce_str}\n{body}\n"


def encrypt_resource(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    nonce_str = nonce(12)
    sealed = AESGCM(apiv3_key.encode("utf-8")).encrypt(nonce_str.encode("ascii"), plaintext.encode("utf-8"),
                                                       associated_data.encode("utf-8"))
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(sealed).decode("ascii"),
            "associated_data": associated_data, "nonce": nonce_str}
