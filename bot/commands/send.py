"""``gradbot send``: post one signed (and, with a key, encrypted) callback and print the reply."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.client import WeChatServer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("send", help="send one message to a callback URL, as WeChat would")
    p.add_argument("--url", required=True, help="callback URL, e.g. http://127.0.0.1:8080/wechat")
    p.add_argument("--token", required=True)
    p.add_argument("--appid", default="")
    p.add_argument("--aes-key", default="", help="EncodingAESKey: encrypt (safe mode)")
    p.add_argument("--openid", default="oGradbotDemoStudent000000001")
    p.add_argument("--api", default="", help="the WeChat stand-in's URL, where --image is uploaded first")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text")
    what.add_argument("--image", type=Path)
    what.add_argument("--event", help="subscribe | unsubscribe | CLICK:KEY")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.aes_key and not args.appid:
        print("gradbot send: --aes-key needs --appid", file=sys.stderr)
        return 2
    try:
        status, reply = asyncio.run(_send(args))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        print(f"gradbot send: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"status": status, "reply": reply}, ensure_ascii=False, indent=2))
    return 0 if status == 200 else 1


async def _send(args: argparse.Namespace) -> tuple[int, object]:
    server = WeChatServer(token=args.token, appid=args.appid, aes_key=args.aes_key)
    async with aiohttp.ClientSession() as http:
        xml = await _xml(server, args, http)
        if args.api:
            await _tell_stand_in(http, args)
        query, body = server.sign(xml, args.openid)
        async with http.post(f"{args.url}?{query}", data=body, headers={"Content-Type": "text/xml"}) as resp:
            raw = await resp.read()
            if resp.status != 200:
                return resp.status, raw.decode("utf-8", "replace")
            return resp.status, server.decode(raw) or "success"


async def _xml(server: WeChatServer, args: argparse.Namespace, http: aiohttp.ClientSession) -> str:
    if args.text is not None:
        return server.text_xml(args.openid, args.text)
    if args.image is not None:
        from bot.sandbox.media import upload_as_student

        media_id = await upload_as_student(http, args.api, args.image)
        return server.image_xml(args.openid, media_id)
    event = str(args.event)
    if event.upper().startswith("CLICK:"):
        return server.event_xml(args.openid, "CLICK", event.split(":", 1)[1])
    if event not in {"subscribe", "unsubscribe"}:
        raise ValueError("--event must be subscribe, unsubscribe or CLICK:KEY")
    return server.event_xml(args.openid, event)


async def _tell_stand_in(http: aiohttp.ClientSession, args: argparse.Namespace) -> None:
    """Real WeChat knows the student just wrote (it opens the 48-hour service window); tell the stand-in."""
    kind = "message" if args.event is None else ("click" if args.event.upper().startswith("CLICK:") else args.event)
    async with http.post(f"{args.api.rstrip('/')}/_stub/interaction", json={"openid": args.openid, "kind": kind}):
        pass
