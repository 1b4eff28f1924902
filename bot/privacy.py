"""Masking of personal data for logs, metrics, console lists and replies (PIPL)."""

from __future__ import annotations

import re

_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])([0-9A-Za-z]{4})([0-9A-Za-z]{4,14})([0-9A-Za-z]{4})(?![0-9A-Za-z])")


def mask_id(number: str) -> str:
    """``430102199001011234`` → ``4301**********1234``; short numbers keep only their last two."""
    n = number.strip()
    if len(n) >= 10:
        return n[:4] + "*" * (len(n) - 8) + n[-4:]
    if len(n) > 2:
        return "*" * (len(n) - 2) + n[-2:]
    return "*" * len(n)


def mask_name(name: str) -> str:
    """``张三丰`` → ``张**``; ``John Smith`` → ``J*********``."""
    n = name.strip()
    return n[:1] + "*" * (len(n) - 1) if n else ""


def mask_openid(openid: str) -> str:
    return openid[:6] + "…" + openid[-4:] if len(openid) > 12 else openid


def scrub(text: str) -> str:
    """Mask anything in free text that looks like an ID or passport number (12+ letters/digits)."""
    return _ID_LIKE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
