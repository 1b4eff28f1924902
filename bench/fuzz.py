"""Fuzz ``POST /wechat`` of a real ``gradbot serve`` with hypothesis: no 500, no crash, no hang.

    python -m bench.fuzz --duration 600            # plain mode, 10 minutes
    python -m bench.fuzz --duration 600 --safe     # safe mode (AES): bodies encrypted with our key
    python -m bench.fuzz --url http://127.0.0.1:8080/wechat --token T   # a server already running

Requests are built to get past each layer in turn: most carry a valid signature for their timestamp
and nonce (so they reach the body parser and the pipeline), some are forged; bodies range from
well-formed messages with hostile field values (control characters, ``]]>``, 40 KiB of text, ID-like
numbers, the start words of real dialogs) through mutated XML, entity declarations and deep nesting
to random bytes. Each answer must be 200, 400, 403 or 413, within ``--hang`` seconds; afterwards the
server must still answer ``/healthz`` and its log must hold no traceback. Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ALLOWED = frozenset({200, 400, 403, 413})
TOKEN, APPID = "fuzztoken", "wx2c2769f8efd9abc2"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MSG_TYPES = ("text", "image", "voice", "video", "shortvideo", "location", "link", "event", "file", "", "TEXT")
EVENTS = ("subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "weird")
WORDS = ("实名认证", "同意", "确认", "否", "1", "2", "删除我的信息", "进度", "返回", "取消", "关联学校", "图像采集",
         "430102199901011232", "]]>", "<![CDATA[", "&amp;", "\x00\x01\x1b", "\u202e\u200d", "🎓" * 50,
         "A" * 5000, "%s%n", "{{ 7*7 }}", "<script>", "\ud7ff", "\uffff")
FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MediaId", "PicUrl",
          "Event", "EventKey", "Status", "Format", "Recognition", "Location_X", "Location_Y", "Scale",
          "Label", "Title", "Description", "Url", "Ticket", "Latitude", "Longitude", "Precision")


def sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # WeChat's algorithm


# -- strategies ---------------------------------------------------------------------------------

values = st.one_of(st.sampled_from(WORDS), st.text(max_size=200), st.integers().map(str),
                   st.text(alphabet=st.characters(codec="utf-8"), max_size=40))


@st.composite
def message_xml(draw: st.DrawFn, openid: str) -> str:
    kind = draw(st.sampled_from(MSG_TYPES))
    fields = {"ToUserName": "gh_fuzz", "FromUserName": openid, "CreateTime": str(int(time.time())),
              "MsgType": kind}
    if kind == "event":
        fields["Event"] = draw(st.sampled_from(EVENTS))
    fields.update(draw(st.dictionaries(st.sampled_from(FIELDS) | st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True),
                                       values, max_size=6)))
    parts = [_element(name, value, draw(st.booleans())) for name, value in fields.items()]
    return "<xml>" + "".join(draw(st.permutations(parts))) + "</xml>"


def _element(name: str, value: str, cdata: bool) -> str:
    if cdata:
        return f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>"
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<{name}>{escaped}</{name}>"


@st.composite
def hostile_xml(draw: st.DrawFn, openid: str) -> str:
    depth = draw(st.integers(1, 3000))
    return draw(st.sampled_from([
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f"<xml><FromUserName>{openid}</FromUserName><MsgType>text</MsgType><Content>&b;</Content></xml>",
        '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Content>&xxe;</Content></xml>',
        "<a>" * depth + "</a>" * depth,
        f"<xml><FromUserName>{openid}</FromUserName>" + "<MsgType>text</MsgType>" * 50 + "</xml>",
        f"<xml><!-- c --><FromUserName>{openid}</FromUserName><MsgType>text</MsgType><Content>x</Content></xml>",
        f"<xml><FromUserName a='1'>{openid}</FromUserName><MsgType><b>text</b></MsgType></xml>",
        "<xml>" + "x" * 70_000 + "</xml>",
        "", "success", "<xml/>", "<xml>", "\ufeff<xml></xml>",
    ]))


@st.composite
def mutated(draw: st.DrawFn, base: str) -> bytes:
    data = bytearray(base.encode("utf-8"))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(("insert", "delete", "flip")))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif data:
            data[min(pos, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@dataclass(frozen=True)
class Fuzzed:
    query: str
    body: bytes
    seal: bool | None = None  # encrypt the body at send time (wechatpy uses ``random``, which strategies may not)
    signed: bool = True  # with a valid msg_signature

    def wire(self) -> tuple[str, bytes]:
        if self.seal is None:
            return self.query, self.body
        query = dict(parse_qsl(self.query, keep_blank_values=True))
        body, query = _sealed(self.body, query, self.signed)
        return urlencode(query), body


@st.composite
def callbacks(draw: st.DrawFn, safe: bool) -> Fuzzed:
    openid = draw(st.sampled_from(["oFuzz_" + secrets.token_hex(6), "oFuzzStudent_0001", ""]) | st.text(max_size=30))
    xml = draw(st.one_of(message_xml(openid), message_xml(openid), hostile_xml(openid)))
    body: bytes = draw(st.one_of(st.just(xml.encode("utf-8", "surrogatepass")), mutated(xml),
                                 st.binary(max_size=300))) if draw(st.integers(0, 9)) < 3 else xml.encode(
        "utf-8", "surrogatepass")
    weird = st.sampled_from(["0", "-1", "1e9", "", "９９", "²", str(int(time.time()) - 3600)]) | st.text(max_size=12)
    timestamp = str(int(time.time())) if draw(st.integers(0, 9)) < 8 else draw(weird)
    nonce = draw(st.text(alphabet="0123456789abc", max_size=12))
    query: dict[str, str] = {"timestamp": timestamp, "nonce": nonce}
    if draw(st.integers(0, 9)) < 8:
        query["signature"] = sha1(TOKEN, timestamp, nonce)
    else:
        query["signature"] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        query["openid"] = openid
    if safe and draw(st.integers(0, 9)) < 8:
        return Fuzzed(urlencode(query), body, seal=True, signed=draw(st.booleans()))
    if draw(st.integers(0, 19)) == 0:
        query["encrypt_type"] = draw(st.sampled_from(["aes", "raw", "AES", "rc4"]))
    return Fuzzed(urlencode(query), body)


def _sealed(body: bytes, query: dict[str, str], good_signature: bool) -> tuple[bytes, dict[str, str]]:
    from wechatpy.crypto import PrpCrypto

    text = body.decode("utf-8", "replace")
    encrypt = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(text, APPID)
    encrypt = encrypt.decode() if isinstance(encrypt, bytes) else str(encrypt)
    signature = sha1(TOKEN, query["timestamp"], query["nonce"], encrypt) if good_signature else "0" * 40
    sealed = f"<xml><ToUserName><![CDATA[gh_fuzz]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return sealed.encode(), {**query, "encrypt_type": "aes", "msg_signature": signature}


# -- sending and judging ------------------------------------------------------------------------

@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    worst_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    def judge(self, status: int | None, seconds: float, sample: Fuzzed, hang: float) -> None:
        self.statuses[status or 0] += 1
        self.worst_s = max(self.worst_s, seconds)
        if status not in ALLOWED or seconds > hang:
            self.failures.append(f"status {status} after {seconds:.2f}s for {sample.query} {sample.body[:200]!r}")


def post(url: str, sample: Fuzzed, timeout: float) -> tuple[int | None, float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    query, body = sample.wire()
    started = time.perf_counter()
    try:
        conn.request("POST", f"{parts.path}?{query}", body=body, headers={"Content-Type": "text/xml"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        return None, time.perf_counter() - started
    finally:
        conn.close()


def healthz(url: str) -> bool:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def fuzz_for(url: str, safe: bool, examples: int, tally: Tally, hang: float) -> None:
    """One hypothesis run of ``examples`` requests (no shrinking: every failure is recorded as it is)."""
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(callbacks(safe))
    def one(sample: Fuzzed) -> None:
        status, seconds = post(url, sample, hang + 5)
        tally.judge(status, seconds, sample, hang)

    one()


# -- the benchmark run: its own gradbot serve --------------------------------------------------

def _serve(safe: bool, workdir: Path) -> tuple[Any, str]:
    from bench import servers

    env = {"GRADBOT_WECHAT_TOKEN": TOKEN, "GRADBOT_WECHAT_APPID": APPID,
           "GRADBOT_REDIS_PREFIX": "fuzz" + secrets.token_hex(4),
           "GRADBOT_WECHAT_API_BASE": f"http://127.0.0.1:{servers.free_port()}"}
    if safe:
        env["GRADBOT_WECHAT_AES_KEY"] = AES_KEY
    run = servers.start(servers.Variant("fuzz-safe" if safe else "fuzz", "gradbot", 1, safe), env, workdir)
    return run, run.url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of fuzzing")
    ap.add_argument("--safe", action="store_true", help="safe mode (the server gets the AES key)")
    ap.add_argument("--url", help="fuzz a running server instead of starting one (plain: --token)")
    ap.add_argument("--hang", type=float, default=6.0, help="an answer slower than this is a hang")
    ap.add_argument("--batch", type=int, default=500, help="examples per hypothesis run")
    args = ap.parse_args(argv)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"gradbot-fuzz-{secrets.token_hex(4)}"
    workdir.mkdir(parents=True)
    run, url = (None, args.url) if args.url else _serve(args.safe, workdir)
    tally, started, runs = Tally(), time.monotonic(), 0
    log_from = run.log_size() if run else 0
    try:
        while time.monotonic() - started < args.duration:
            fuzz_for(url, args.safe, args.batch, tally, args.hang)
            runs += 1
        alive = run is None or run.proc.poll() is None
        healthy = healthz(url)
        errors = run.log_errors(log_from) if run else []
    finally:
        if run is not None:
            from bench import servers

            servers.stop(run)
    summary = {"mode": "safe" if args.safe else "plain", "seconds": round(time.monotonic() - started, 1),
               "requests": sum(tally.statuses.values()), "hypothesis_runs": runs,
               "statuses": dict(sorted(tally.statuses.items())), "worst_s": round(tally.worst_s, 3),
               "failures": tally.failures[:20], "server_alive": alive, "healthz_after": healthy,
               "server_error_lines": errors[:20]}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if not tally.failures and alive and healthy and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
