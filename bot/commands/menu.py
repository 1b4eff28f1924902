"""``gradbot menu push --file menu.toml``: check a menu against WeChat's rules, then create it."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot.config import Settings, SettingsError
from bot.wechat.api import WeChatAPI
from bot.wechat.errors import WeChatError
from bot.wechat.menu import validate_menu
from storage.keys import KeyBuilder
from storage.tokens import MemoryTokenCache, RedisTokenCache, TokenCache


class MenuFileError(ValueError):
    """The file cannot be read as a menu; the message says where and why."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("menu", help="the account's custom menu")
    sub = p.add_subparsers(dest="menu_command", required=True)
    push = sub.add_parser("push", help="validate a TOML menu file and create the menu through the API")
    push.add_argument("--file", required=True, type=Path, help="e.g. docs/menu.example.toml")
    push.add_argument("--dry-run", action="store_true", help="only check the file")
    push.set_defaults(func=run_push)


def load_menu(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise MenuFileError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise MenuFileError(f"{path}: not valid TOML ({exc})") from None
    extra = sorted(set(data) - {"button"})
    if extra:
        raise MenuFileError(f"{path}: unknown top-level keys {extra}; a menu has only [[button]] tables")
    return data


def run_push(args: argparse.Namespace) -> int:
    try:
        menu = load_menu(args.file)
    except MenuFileError as exc:
        print(f"gradbot menu push: {exc}", file=sys.stderr)
        return 2
    problems = validate_menu(menu)
    for problem in problems:
        print(f"gradbot menu push: {args.file}: {problem}", file=sys.stderr)
    if problems:
        return 2
    if args.dry_run:
        print(f"{args.file}: menu is valid ({len(menu['button'])} top-level buttons)")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot menu push: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_push(settings, menu))


async def _push(settings: Settings, menu: dict[str, Any]) -> int:
    client = None if settings.memory_state else aioredis.Redis.from_url(settings.redis_url)
    tokens: TokenCache = MemoryTokenCache() if client is None else RedisTokenCache(
        client, KeyBuilder(settings.redis_prefix, settings.wechat_appid))
    try:
        async with aiohttp.ClientSession() as http:
            await WeChatAPI(http, settings, tokens).create_menu(menu)
    except WeChatError as exc:
        print(f"gradbot menu push: WeChat refused the menu: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            await client.aclose()
    print(f"menu created at {settings.wechat_api_base} ({len(menu['button'])} top-level buttons)")
    return 0
