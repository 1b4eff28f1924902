"""Template messages as configuration: which WeChat template, which field gets which value, cut to fit.

WeChat refuses a value longer than its keyword type allows with 47003 (reference/wechat.md §2.4,
pay-notify-identity.md §3): ``thing`` 20 characters, ``phrase`` 5, ``character_string`` 32 ASCII…
and shows every field on one line. :func:`cut` makes any value fit before it is sent, so a long
school name or reason shortens instead of failing the whole message.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# Longest value per keyword type (characters), and the types that take ASCII only.
FIELD_LIMITS = {"thing": 20, "name": 10, "phrase": 5, "symbol": 5, "character_string": 32, "letter": 32,
                "number": 32, "phone_number": 17, "time": 32, "date": 32, "amount": 32}
ASCII_ONLY = frozenset({"character_string", "letter", "number", "phone_number"})
USES = {
    "review": frozenset({"procedure_title", "result", "reasons", "next_step", "decided_at", "school_name",
                         "notice_url"}),
    "broadcast": frozenset({"procedure_title", "closes", "school_name"}),
}
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_FIELD = re.compile(r"^[a-z_]+[0-9]*$")
_BREAKS = re.compile(r"\s*[\r\n]+\s*")


class TemplateConfigError(ValueError):
    """The template file is unusable; the message names the template and the problem."""


class UnknownTemplate(KeyError):
    """No template of that name is configured."""


def cut(kind: str, value: str) -> str:
    """``value`` made acceptable for a field of type ``kind`` (one line, within the limit, never empty)."""
    text = _BREAKS.sub(" ", value).strip()
    if kind in ASCII_ONLY:
        text = "".join(ch for ch in text if ch.isascii() and ch.isprintable())
        if kind == "number":
            text = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    limit = FIELD_LIMITS.get(kind, 20)
    if len(text) > limit:
        text = text[:limit] if kind in ASCII_ONLY else text[: limit - 1] + "…"
    return text or ("-" if kind in ASCII_ONLY else "无")


def fill(pattern: str, values: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), pattern)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    name: str
    use: str
    title: str
    template_id: str
    url: str
    fields: tuple[FieldSpec, ...]

    def placeholders(self) -> set[str]:
        found = set(_PLACEHOLDER.findall(self.url))
        for f in self.fields:
            found |= set(_PLACEHOLDER.findall(f.value))
        return found

    def admin_variables(self) -> list[str]:
        """Placeholders the sender fills in by hand (broadcasts): those gradbot does not supply."""
        return sorted(self.placeholders() - USES[self.use])

    def render(self, values: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
        """Field values as sent (each cut to its type) and the URL (None when empty)."""
        data = {f.name: cut(f.type, fill(f.value, values)) for f in self.fields}
        url = fill(self.url, values).strip()
        return data, url or None


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    templates: Mapping[str, TemplateSpec]

    def get(self, name: str) -> TemplateSpec:
        try:
            return self.templates[name]
        except KeyError:
            raise UnknownTemplate(name) from None

    def for_use(self, use: str) -> list[TemplateSpec]:
        return [t for t in self.templates.values() if t.use == use]

    def stub_templates(self) -> dict[str, dict[str, str]]:
        """{template_id: {field: type}}: what the WeChat stand-in must know to accept our sends."""
        return {t.template_id: {f.name: f.type for f in t.fields} for t in self.templates.values()}


def load_templates(path: str | Path = "") -> TemplateConfig:
    text = Path(path).read_text(encoding="utf-8") if path else (
        resources.files("bot.services.notify").joinpath("templates.toml").read_text(encoding="utf-8"))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateConfigError(f"{path or 'templates.toml'}: {exc}") from None
    specs = {name: _spec(name, entry) for name, entry in raw.get("template", {}).items()}
    if not specs:
        raise TemplateConfigError(f"{path or 'templates.toml'}: no [template.NAME] tables")
    return TemplateConfig(specs)


def _spec(name: str, entry: Mapping[str, Any]) -> TemplateSpec:
    use = str(entry.get("use", ""))
    if use not in USES:
        raise TemplateConfigError(f"template {name}: use must be one of {', '.join(USES)}")
    if not str(entry.get("template_id", "")).strip():
        raise TemplateConfigError(f"template {name}: template_id is missing")
    fields = tuple(_field(name, key, value) for key, value in dict(entry.get("fields", {})).items())
    if not fields:
        raise TemplateConfigError(f"template {name}: it has no fields")
    spec = TemplateSpec(name, use, str(entry.get("title", name)), str(entry["template_id"]).strip(),
                        str(entry.get("url", "")), fields)
    unknown = spec.placeholders() - USES[use] if use == "review" else set()
    if unknown:
        raise TemplateConfigError(f"template {name}: unknown placeholders {sorted(unknown)} for use {use!r}")
    return spec


def _field(template: str, name: str, entry: Any) -> FieldSpec:
    if not isinstance(entry, Mapping) or entry.get("type") not in FIELD_LIMITS:
        raise TemplateConfigError(f"template {template}: field {name} needs a type, one of {sorted(FIELD_LIMITS)}")
    if not _FIELD.match(name) or name in ("first", "remark"):
        # first/remark were removed in 2023 and are silently dropped by WeChat.
        raise TemplateConfigError(f"template {template}: field name {name!r} is not a usable WeChat field")
    return FieldSpec(name, str(entry["type"]), str(entry.get("value", "")))
