"""``gradbot pay-sandbox [--host] [--port 8082]``: the local WeChat Pay v3 stand-in (docs/payments.md).

On first start it generates its keys into ``<data_dir>/pay-sandbox/`` and writes the GRADBOT_PAY_*
lines that point gradbot at them into ``gradbot-pay.env`` there (also printed).
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from bot.config import Settings, SettingsError
from bot.sandbox.pay_keys import load_or_create
from bot.sandbox.pay_sandbox import SandboxConfig, create_pay_sandbox


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("pay-sandbox", help="run the local WeChat Pay v3 sandbox")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--appid", help="AppID it accepts (default: GRADBOT_PAY_APPID, else GRADBOT_WECHAT_APPID)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiplies the notification retry schedule (0.01: retries 100 times sooner)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot pay-sandbox: {exc}", file=sys.stderr)
        return 2
    if args.time_scale <= 0:
        print("gradbot pay-sandbox: --time-scale must be > 0", file=sys.stderr)
        return 2
    keys = load_or_create(settings.data_dir)
    base = f"http://{args.host}:{args.port}"
    env_file = keys.write_env(base)
    appid = args.appid or settings.pay_appid or settings.wechat_appid
    print(f"WeChat Pay sandbox for merchant {keys.mchid}, appid {appid}, on {base}", flush=True)
    print(f"Point gradbot at it (also in {env_file}):", flush=True)
    for name, value in keys.env(base).items():
        print(f"  export {name}={value}", flush=True)
    config = SandboxConfig(keys=keys, appid=appid, time_scale=args.time_scale)
    web.run_app(create_pay_sandbox(config), host=args.host, port=args.port, print=None)
    return 0
