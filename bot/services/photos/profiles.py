"""Photo profiles: the pixel, file and background rules of one school or procedure, as data.

The shipped profiles live in ``profiles.toml`` beside this module; a deployment adds or overrides
profiles with a TOML file of the same shape named by ``GRADBOT_PHOTO_PROFILES``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

ENV_VAR = "GRADBOT_PHOTO_PROFILES"
DEFAULT_PROFILE = "chsi"
KB = 1024
# Reference colours of the standard; a profile may also name "#rrggbb".
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "light_blue": (100, 197, 255),
    "white": (255, 255, 255),
    "light_grey": (240, 240, 240),
}
FORMATS = {"JPEG", "PNG"}


class ProfileError(ValueError):
    """A profile file is malformed; the message names the profile and the field."""


@dataclass(frozen=True, slots=True)
class Geometry:
    """Spec geometry in pixels of the 480×640 reference frame; scaled to other output sizes."""

    head_top: tuple[float, float] = (50, 110)
    eye_line: tuple[float, float] = (200, 300)
    face_width: tuple[float, float] = (180, 300)
    centre_tolerance: float = 24
    # What the auto-fix aims for, inside the ranges above.
    eye_target: float = 250
    face_target: float = 240


REF_W, REF_H = 480, 640


@dataclass(frozen=True, slots=True)
class PhotoProfile:
    name: str
    title: str
    width: tuple[int, int]
    height: tuple[int, int]
    formats: tuple[str, ...]
    kb: tuple[float, float]
    backgrounds: tuple[str, ...]
    fix_size: tuple[int, int]
    aspect: str = ""
    dpi: int = 0
    min_quality: int = 60
    source: str = ""
    geometry: Geometry = field(default_factory=Geometry)

    @property
    def byte_range(self) -> tuple[int, int]:
        return int(self.kb[0] * KB), int(self.kb[1] * KB)

    @property
    def aspect_ratio(self) -> float | None:
        if not self.aspect:
            return None
        w, h = (float(x) for x in self.aspect.split(":"))
        return w / h

    def background_colours(self) -> dict[str, tuple[int, int, int]]:
        return {name: background_rgb(name) for name in self.backgrounds}

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "width": list(self.width),
                "height": list(self.height), "aspect": self.aspect, "formats": list(self.formats),
                "kb": list(self.kb), "dpi": self.dpi, "backgrounds": list(self.backgrounds),
                "fix_size": list(self.fix_size)}


def background_rgb(name: str) -> tuple[int, int, int]:
    if name in BACKGROUNDS:
        return BACKGROUNDS[name]
    text = name.removeprefix("#")
    if len(text) != 6:
        raise ProfileError(f"unknown background {name!r}: use {sorted(BACKGROUNDS)} or #rrggbb")
    try:
        value = int(text, 16)
    except ValueError as exc:
        raise ProfileError(f"unknown background {name!r}") from exc
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def load_profiles(extra: Path | None = None) -> dict[str, PhotoProfile]:
    """Shipped profiles, then those of ``extra`` (which may override or extend them)."""
    raw = _read_toml(resources.files(__package__).joinpath("profiles.toml").read_text("utf-8"), "profiles.toml")
    if extra is not None:
        try:
            text = extra.read_text("utf-8")
        except OSError as exc:
            raise ProfileError(f"{ENV_VAR}: cannot read {extra}: {exc.strerror}") from exc
        raw.update(_read_toml(text, str(extra)))
    return {name: _build(name, _resolve(name, raw, ())) for name in raw}


def profiles_from_env(env: Mapping[str, str] | None = None) -> dict[str, PhotoProfile]:
    path = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    return load_profiles(Path(path) if path else None)


def _read_toml(text: str, origin: str) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: {exc}") from exc
    bad = [k for k, v in data.items() if not isinstance(v, dict)]
    if bad:
        raise ProfileError(f"{origin}: {bad[0]!r} is not a [profile] table")
    return data


def _resolve(name: str, raw: Mapping[str, dict[str, Any]], seen: tuple[str, ...]) -> dict[str, Any]:
    if name in seen:
        raise ProfileError(f"profile {name!r}: extends loops through {' -> '.join(seen)}")
    if name not in raw:
        raise ProfileError(f"profile {seen[-1]!r} extends unknown profile {name!r}")
    own = dict(raw[name])
    parent = own.pop("extends", None)
    if parent is None:
        return own
    merged = _resolve(str(parent), raw, (*seen, name))
    geometry = {**merged.get("geometry", {}), **own.pop("geometry", {})}
    return {**merged, **own, "geometry": geometry}


def _build(name: str, values: dict[str, Any]) -> PhotoProfile:
    known = {f.name for f in fields(PhotoProfile)} - {"name"}
    unknown = set(values) - known
    if unknown:
        raise ProfileError(f"profile {name!r}: unknown field {sorted(unknown)[0]!r}")
    try:
        profile = PhotoProfile(
            name=name, title=str(values.get("title", name)),
            width=_pair(values["width"], int), height=_pair(values["height"], int),
            formats=tuple(str(f).upper() for f in values.get("formats", ["JPEG"])),
            kb=_pair(values["kb"], float), backgrounds=tuple(values["backgrounds"]),
            fix_size=_pair(values["fix_size"], int), aspect=str(values.get("aspect", "")),
            dpi=int(values.get("dpi", 0)), min_quality=int(values.get("min_quality", 60)),
            source=str(values.get("source", "")), geometry=_geometry(values.get("geometry", {})),
        )
    except KeyError as exc:
        raise ProfileError(f"profile {name!r}: missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"profile {name!r}: {exc}") from exc
    return _validate(profile)


def _pair(value: Any, kind: type[Any]) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected [min, max], got {value!r}")
    low, high = kind(value[0]), kind(value[1])
    if low > high:
        raise ValueError(f"[min, max] out of order: {value!r}")
    return low, high


def _geometry(values: Mapping[str, Any]) -> Geometry:
    base = Geometry()
    pairs = {k: _pair(v, float) for k, v in values.items() if isinstance(v, list)}
    scalars = {k: float(v) for k, v in values.items() if not isinstance(v, list)}
    return Geometry(**{**{f.name: getattr(base, f.name) for f in fields(Geometry)}, **pairs, **scalars})


def _validate(p: PhotoProfile) -> PhotoProfile:
    if set(p.formats) - FORMATS:
        raise ProfileError(f"profile {p.name!r}: formats must be among {sorted(FORMATS)}")
    for bg in p.backgrounds:
        background_rgb(bg)
    fw, fh = p.fix_size
    if not (p.width[0] <= fw <= p.width[1] and p.height[0] <= fh <= p.height[1]):
        raise ProfileError(f"profile {p.name!r}: fix_size {fw}×{fh} is outside its own pixel ranges")
    if p.aspect:
        try:
            p.aspect_ratio  # noqa: B018 - parse now so a typo fails at load, not per photo
        except ValueError as exc:
            raise ProfileError(f"profile {p.name!r}: aspect must look like 3:4") from exc
    return p
