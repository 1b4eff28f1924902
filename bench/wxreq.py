"""Signed WeChat callback requests for the load tools: plain and safe mode, every MsgId unique.

The plain signature covers only (token, timestamp, nonce), so in plain mode the wrk script varies the
body per request (fresh MsgId, CreateTime, openid, text) under a small set of pre-signed query strings.
In safe mode ``msg_signature`` also covers the ciphertext, so each request is pre-built and signed here,
as a pool that the run must not wrap (a wrapped pool would resend MsgIds and hit the server's dedup).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import secrets
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TO_USER = "gh_6c2f0e5b1a9d"
TEXTS = ("你好", "查询进度", "帮助", "我要办理毕业手续", "hello", "1", "学位证什么时候发？")
OPENIDS = 200
SIGNED_QUERIES = 61  # prime, so (openid, query, text) combinations do not repeat in step


@dataclass(frozen=True)
class Account:
    token: str
    appid: str
    aes_key: str = ""  # 43 characters: safe mode when set

    @property
    def safe(self) -> bool:
        return bool(self.aes_key)


def openids(n: int = OPENIDS) -> list[str]:
    """Deterministic 28-character openids shaped like WeChat's (``o`` + 27 url-safe characters)."""
    out = []
    for i in range(n):
        digest = base64.urlsafe_b64encode(hashlib.sha1(f"bench-{i}".encode()).digest()).decode()
        out.append("oBENCH" + digest[:22])
    return out


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed_query(token: str, timestamp: int, nonce: str) -> str:
    return f"signature={sign(token, str(timestamp), nonce)}&timestamp={timestamp}&nonce={nonce}"


def text_xml(openid: str, msg_id: str, text: str, create_time: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{create_time}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def run_tag() -> str:
    """Six digits that differ between runs made within a day, so MsgIds never collide across runs."""
    return f"{int(time.time() * 10) % 1_000_000:06d}"


def msg_ids(tag: str) -> Iterator[str]:
    # 1 + 6 + 10 digits: 17 digits, like real MsgIds, below 2**63.
    return (f"1{tag}{n:010d}" for n in itertools.count(1))


class Encryptor:
    """WeChat safe-mode encryption (AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes, appid trailer)."""

    def __init__(self, aes_key: str, appid: str) -> None:
        self.key = base64.b64decode(aes_key + "=")
        self.appid = appid.encode()

    def encrypt(self, text: str) -> str:
        raw = text.encode()
        plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + self.appid
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, b64: str) -> str:
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = dec.update(base64.b64decode(b64)) + dec.finalize()
        plain = plain[: -plain[-1]]
        (length,) = struct.unpack(">I", plain[16:20])
        return plain[20 : 20 + length].decode()


def safe_request(acct: Account, enc: Encryptor, body_xml: str, ts: int, nonce: str) -> tuple[str, str]:
    cipher = enc.encrypt(body_xml)
    query = (
        f"{signed_query(acct.token, ts, nonce)}&encrypt_type=aes"
        f"&msg_signature={sign(acct.token, str(ts), nonce, cipher)}"
    )
    body = f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>"
    return query, body


def pool(acct: Account, count: int, tag: str | None = None) -> Iterator[tuple[str, str]]:
    """``count`` distinct (query, body) requests, openids and texts cycling, signed with the current time."""
    ids = openids()
    enc = Encryptor(acct.aes_key, acct.appid) if acct.safe else None
    ts = int(time.time())
    for n, msg_id in zip(range(count), msg_ids(tag or run_tag()), strict=False):
        openid, nonce = ids[n % len(ids)], str(100000000 + secrets.randbelow(900000000))
        body = text_xml(openid, msg_id, TEXTS[n % len(TEXTS)], ts)
        if enc is None:
            yield f"{signed_query(acct.token, ts, nonce)}&openid={openid}", body
        else:
            query, body = safe_request(acct, enc, body, ts, nonce)
            yield f"{query}&openid={openid}", body


def write_pool(path: Path, acct: Account, count: int, tag: str | None = None) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for query, body in pool(acct, count, tag):
            fh.write(f"{query}\t{body}\n")
    return path


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LUA_COMMON = r"""
local path = @@PATH@@
local headers = {["Content-Type"] = "text/xml"}
n = 0
wrapped = 0
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local sent, wrap = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("n")
    wrap = wrap + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,"wrapped":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"lat_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, sent, wrap,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""

_LUA_PLAIN = r"""
local queries = @@QUERIES@@
local openids = @@OPENIDS@@
local texts = @@TEXTS@@
local tag = @@TAG@@
local to_user = @@TO_USER@@
request = function()
  n = n + 1
  local o = openids[(n % #openids) + 1]
  local q = path .. "?" .. queries[(n % #queries) + 1] .. "&openid=" .. o
  local body = "<xml><ToUserName><![CDATA[" .. to_user .. "]]></ToUserName><FromUserName><![CDATA[" ..
    o .. "]]></FromUserName><CreateTime>" .. os.time() ..
    "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" .. texts[(n % #texts) + 1] ..
    "]]></Content><MsgId>" .. tag .. tid .. string.format("%09d", n) .. "</MsgId></xml>"
  return wrk.format("POST", q, headers, body)
end
"""

_LUA_POOL = r"""
local pool = {}
function init(args)
  local i = 0
  for line in io.lines(@@POOLFILE@@) do
    if i % @@NTHREADS@@ == tid then
      local q, b = line:match("^([^\t]*)\t(.*)$")
      pool[#pool + 1] = wrk.format("POST", path .. "?" .. q, headers, b)
    end
    i = i + 1
  end
end
request = function()
  n = n + 1
  if n > #pool then wrapped = 1 end
  return pool[((n - 1) % #pool) + 1]
end
"""


def _lua_table(items: list[str]) -> str:
    return "{" + ",".join(_lua_str(i) for i in items) + "}"


def plain_lua(acct: Account, path: str = "/wechat", tag: str | None = None) -> str:
    """wrk script for plain mode: every request a new MsgId (tag + thread + counter), no pool to wrap."""
    ts = int(time.time())
    queries = [signed_query(acct.token, ts, str(100000000 + secrets.randbelow(900000000)))
               for _ in range(SIGNED_QUERIES)]
    subs = {
        "PATH": _lua_str(path), "QUERIES": _lua_table(queries), "OPENIDS": _lua_table(openids()),
        "TEXTS": _lua_table(list(TEXTS)), "TAG": _lua_str("1" + (tag or run_tag())),
        "TO_USER": _lua_str(TO_USER),
    }
    return _subst(_LUA_COMMON + _LUA_PLAIN, subs)


def pool_lua(pool_file: Path, threads: int = 1, path: str = "/wechat") -> str:
    """wrk script replaying a pre-built pool (safe mode); ``wrapped`` in the summary flags reuse."""
    subs = {"PATH": _lua_str(path), "POOLFILE": _lua_str(str(pool_file)), "NTHREADS": str(threads)}
    return _subst(_LUA_COMMON + _LUA_POOL, subs)


def _subst(template: str, subs: dict[str, str]) -> str:
    return re.sub(r"@@([A-Z_]+)@@", lambda m: subs[m.group(1)], template)
