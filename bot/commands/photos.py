"""``gradbot check-photo`` and ``gradbot profiles list``: the photo checker from the command line.

``check-photo`` prints one JSON object per file with ``--json`` (the issue-4 contract), else the
reply a student would get. It exits 0 whenever it ran, whatever the verdict; 2 on a usage or
profile-configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.services.photos.profiles import DEFAULT_PROFILE, PhotoProfile, ProfileError, profiles_from_env

if TYPE_CHECKING:
    from bot.services.photos import PhotoReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser("check-photo", help="check graduation photos against a profile")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name (default {DEFAULT_PROFILE})")
    check.add_argument("--json", action="store_true", help="one JSON report per line")
    check.add_argument("--fix", type=Path, metavar="OUT.jpg",
                       help="write the auto-fixed photo here (several files: OUT-1.jpg, OUT-2.jpg …)")
    check.set_defaults(func=run_check)
    profiles = subparsers.add_parser("profiles", help="photo profiles")
    actions = profiles.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list the photo profiles (shipped + GRADBOT_PHOTO_PROFILES)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)


def _profiles() -> dict[str, PhotoProfile] | None:
    try:
        return profiles_from_env()
    except ProfileError as exc:
        print(f"gradbot: photo profiles: {exc}", file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    profiles = _profiles()
    if profiles is None:
        return 2
    profile = profiles.get(args.profile)
    if profile is None:
        print(f"gradbot check-photo: unknown profile {args.profile!r}; see `gradbot profiles list`",
              file=sys.stderr)
        return 2
    from bot.services.photos.face import default_engine

    default_engine()  # load the models before the first file, so its "ms" is the check alone
    for index, file in enumerate(args.files, start=1):
        out = _out_path(args.fix, index, len(args.files))
        report = check_file(file, profile, out)
        print(json.dumps(report.to_json(), ensure_ascii=False) if args.json else _human(report, profile))
    return 0


def check_file(file: Path, profile: PhotoProfile, out: Path | None) -> PhotoReport:
    # numpy, Pillow and the face engine load only for this command, not for every `gradbot` call.
    from bot.services.photos.decode import PhotoInputError
    from bot.services.photos.pipeline import analyse, decode_failure_report

    try:
        data = file.read_bytes()
    except OSError as exc:
        report = decode_failure_report(PhotoInputError("unreadable", exc.strerror or str(exc)), profile)
        return dataclasses.replace(report, file=str(file))
    report = dataclasses.replace(analyse(data, profile, fix=out is not None), file=str(file))
    if out is not None and report.fixed is not None:
        out.write_bytes(report.fixed.data)
        report = dataclasses.replace(report, fixed=dataclasses.replace(report.fixed, path=str(out)))
    return report


def _out_path(fix: Path | None, index: int, total: int) -> Path | None:
    if fix is None or total == 1:
        return fix
    return fix.with_name(f"{fix.stem}-{index}{fix.suffix or '.jpg'}")


def _human(report: PhotoReport, profile: PhotoProfile) -> str:
    from bot.services.photos.reply import render_reply

    lines = [f"== {report.file} ({report.ms:.0f} ms)", render_reply(report, profile)]
    if report.fixed is not None and report.fixed.path:
        lines.append(f"-> {report.fixed.path}")
    return "\n".join(lines) + "\n"


def run_list(args: argparse.Namespace) -> int:
    profiles = _profiles()
    if profiles is None:
        return 2
    if args.json:
        print(json.dumps([p.summary() for p in profiles.values()], ensure_ascii=False, indent=2))
        return 0
    for p in profiles.values():
        size = _range(p.width) + "x" + _range(p.height)
        print(f"{p.name:16} {size:22} {'/'.join(p.formats):9} {_range(p.kb)} KB  "
              f"{','.join(p.backgrounds):30} {p.title}")
    return 0


def _range(pair: tuple[float, float]) -> str:
    low, high = (f"{v:g}" for v in pair)
    return low if low == high else f"{low}-{high}"
