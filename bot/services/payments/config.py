"""What the payments service needs from Settings, resolved once: defaults filled in, key files read."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings, SettingsError


@dataclass(frozen=True)
class PayConfig:
    mchid: str
    appid: str
    api_base: str
    serial_no: str
    private_key: str = field(repr=False)
    public_key: str
    public_key_id: str
    apiv3_key: str = field(repr=False)
    notify_url: str
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PayConfig:
        """Raises SettingsError naming the variable that is missing or unreadable."""
        if not settings.pay_mchid:
            raise SettingsError("GRADBOT_PAY_MCHID is not set: payments are off")
        for name in ("pay_serial_no", "pay_public_key_id", "pay_apiv3_key", "pay_private_key_path",
                     "pay_public_key_path"):
            if not getattr(settings, name):
                raise SettingsError(f"GRADBOT_{name.upper()} is required when GRADBOT_PAY_MCHID is set")
        if len(settings.pay_apiv3_key.encode()) != 32:
            raise SettingsError("GRADBOT_PAY_APIV3_KEY must be the 32-character APIv3 key")
        return cls(
            mchid=settings.pay_mchid,
            appid=settings.pay_appid or settings.wechat_appid,
            api_base=settings.pay_api_base.rstrip("/"),
            serial_no=settings.pay_serial_no,
            private_key=_read(settings.pay_private_key_path, "GRADBOT_PAY_PRIVATE_KEY_PATH"),
            public_key=_read(settings.pay_public_key_path, "GRADBOT_PAY_PUBLIC_KEY_PATH"),
            public_key_id=settings.pay_public_key_id,
            apiv3_key=settings.pay_apiv3_key,
            notify_url=settings.pay_notify_url or settings.public_url.rstrip("/") + "/pay/notify",
            public_url=settings.public_url.rstrip("/"),
        )


def link_secret(settings: Settings) -> bytes:
    """Key of pay-link tokens and payer cookies. Every worker derives the same one from shared settings."""
    if settings.pay_link_secret:
        return hashlib.sha256(settings.pay_link_secret.encode()).digest()
    material = "\0".join((settings.pay_apiv3_key, settings.wechat_secret, settings.data_key, settings.wechat_appid))
    return hmac.new(b"gradbot pay-link v1", material.encode(), hashlib.sha256).digest()


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{variable}: cannot read {path!r} ({exc.__class__.__name__})") from None
