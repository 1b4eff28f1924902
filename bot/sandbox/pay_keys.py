"""Keys of the pay sandbox: generated once into ``<data_dir>/pay-sandbox/``, then reused.

The sandbox plays both sides of WeChat Pay's key exchange, so it makes both key pairs: the
merchant's (gradbot signs requests and JSAPI packages with the private half; the sandbox verifies
with the public half) and the platform's (the sandbox signs responses and notifications; gradbot
verifies with the public half, "WeChat Pay public key" mode, ``PUB_KEY_ID_…``). Plus the APIv3 key
that encrypts notification resources. ``gradbot-pay.env`` holds the GRADBOT_PAY_* lines that point
gradbot at these files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SUBDIR = "pay-sandbox"
ENV_FILE = "gradbot-pay.env"
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class SandboxKeys:
    directory: Path
    mchid: str
    serial_no: str  # the merchant certificate serial gradbot names in its Authorization header
    public_key_id: str  # PUB_KEY_ID_…: names the platform key in Wechatpay-Serial
    apiv3_key: str

    @property
    def merchant_private_path(self) -> Path:
        return self.directory / "merchant_private.pem"

    @property
    def merchant_public_path(self) -> Path:
        return self.directory / "merchant_public.pem"

    @property
    def platform_private_path(self) -> Path:
        return self.directory / "platform_private.pem"

    @property
    def platform_public_path(self) -> Path:
        return self.directory / "platform_public.pem"

    def env(self, api_base: str) -> dict[str, str]:
        """The settings that point gradbot at this sandbox."""
        return {
            "GRADBOT_PAY_API_BASE": api_base,
            "GRADBOT_PAY_MCHID": self.mchid,
            "GRADBOT_PAY_SERIAL_NO": self.serial_no,
            "GRADBOT_PAY_PRIVATE_KEY_PATH": str(self.merchant_private_path),
            "GRADBOT_PAY_PUBLIC_KEY_PATH": str(self.platform_public_path),
            "GRADBOT_PAY_PUBLIC_KEY_ID": self.public_key_id,
            "GRADBOT_PAY_APIV3_KEY": self.apiv3_key,
        }

    def write_env(self, api_base: str) -> Path:
        path = self.directory / ENV_FILE
        lines = [f"{k}={v}" for k, v in self.env(api_base).items()]
        _write_private(path, "\n".join(lines) + "\n")
        return path


def load_or_create(data_dir: Path) -> SandboxKeys:
    """The sandbox keys under ``data_dir``; generated on first use (two starters agree on one set)."""
    directory = data_dir / SUBDIR
    if not (directory / "sandbox.json").exists():
        _generate(directory)
    meta = json.loads((directory / "sandbox.json").read_text(encoding="utf-8"))
    return SandboxKeys(directory, meta["mchid"], meta["serial_no"], meta["public_key_id"], meta["apiv3_key"])


def _generate(directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{SUBDIR}.{os.getpid()}.{secrets.token_hex(4)}")
    staging.mkdir(mode=0o700)
    try:
        for name in ("merchant", "platform"):
            _write_pair(staging, name)
        meta = {
            "mchid": "19" + "".join(secrets.choice(string.digits) for _ in range(8)),
            "serial_no": secrets.token_hex(20).upper(),
            "public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(28)),
            "apiv3_key": "".join(secrets.choice(_ALNUM) for _ in range(32)),
        }
        _write_private(staging / "sandbox.json", json.dumps(meta, indent=2) + "\n")
        staging.rename(directory)  # atomic; fails if another starter won, and then theirs is used
    except OSError:
        if not (directory / "sandbox.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_pair(directory: Path, name: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_private(directory / f"{name}_private.pem", private.decode("ascii"))
    (directory / f"{name}_public.pem").write_bytes(public)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
