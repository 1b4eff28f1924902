"""``gradbot wechat-stub [--host] [--port]``: the local stand-in for the WeChat API (docs/wechat-stub.md)."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from bot.config import Settings, SettingsError
from bot.sandbox.stub_state import FIELD_LIMITS, StubConfig
from bot.sandbox.wechat_stub import create_stub_app


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("wechat-stub", help="run the local WeChat API stand-in")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--appid", help="AppID it accepts (default: GRADBOT_WECHAT_APPID)")
    p.add_argument("--secret", help="AppSecret it accepts (default: GRADBOT_WECHAT_SECRET)")
    p.add_argument("--token-ttl", type=int, default=7200, help="seconds an access token lives")
    p.add_argument("--daily-template-quota", type=int, default=100_000)
    p.add_argument("--template", action="append", default=[], metavar="ID:FIELD=TYPE,...",
                   help="a template it knows, e.g. TPL_REVIEW:thing1=thing,time2=time (repeatable)")
    p.set_defaults(func=run)


def parse_template(spec: str) -> tuple[str, dict[str, str]]:
    """``TPL:thing1=thing,time2=time`` -> ("TPL", {"thing1": "thing", "time2": "time"})."""
    template_id, _, fields = spec.partition(":")
    pairs = [item.partition("=") for item in fields.split(",") if item]
    if not template_id or not pairs or any(not name or kind not in FIELD_LIMITS for name, _, kind in pairs):
        raise ValueError(f"--template {spec!r}: expected ID:field=type,... with types {sorted(FIELD_LIMITS)}")
    return template_id, {name: kind for name, _, kind in pairs}


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        templates = dict(parse_template(spec) for spec in args.template)
    except (SettingsError, ValueError) as exc:
        print(f"gradbot wechat-stub: {exc}", file=sys.stderr)
        return 2
    config = StubConfig(appid=args.appid or settings.wechat_appid, secret=args.secret or settings.wechat_secret,
                        token_ttl=args.token_ttl, daily_template_quota=args.daily_template_quota,
                        templates=templates)
    print(f"WeChat stand-in for {config.appid} on http://{args.host}:{args.port} "
          f"(set GRADBOT_WECHAT_API_BASE to this URL)", flush=True)
    web.run_app(create_stub_app(config), host=args.host, port=args.port, print=None)
    return 0
