"""Open-loop load: requests leave on a fixed schedule whatever happened to earlier ones.

Debian has no fixed-rate C client that can send a different signed body per request (no wrk2; h2load's
``--rate`` paces connections and repeats one body, which the server's dedup would short-circuit), so this
is a small asyncio (uvloop) client run in its own process. Latency counts from each request's *scheduled*
send time, so time spent queued behind a slow server is included (no coordinated omission). At most
``--max-conns`` requests are in flight, on keep-alive connections opened only when something is due, as
WeChat's servers do. A server that falls more than ``--max-backlog`` seconds of requests behind has lost
the rate: the run stops there and says so (``aborted_at``). Prints one JSON object: achieved rate,
percentiles, status counts and the client's own CPU per request.

    python bench/openloop.py http://127.0.0.1:8080/wechat pool.tsv --rate 500 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


class Conn(asyncio.Protocol):
    """One HTTP/1.1 connection; responses framed by Content-Length (or by close)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._try_complete(eof=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._try_complete(eof=True)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed before the response"))

    def _try_complete(self, eof: bool) -> None:
        if self.waiter is None or self.waiter.done():
            return
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        lines = bytes(self.buf[:head_end]).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        pairs = (ln.partition(b":") for ln in lines[1:])
        headers = {k.strip().lower(): v.strip().lower() for k, _, v in pairs}
        close = headers.get(b"connection") == b"close"
        if b"content-length" in headers:
            end = head_end + 4 + int(headers[b"content-length"])
            if len(self.buf) < end:
                return
            del self.buf[:end]
        elif not eof:
            return  # body delimited by close
        self.waiter.set_result((status, close))

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return await self.waiter


class Client:
    def __init__(self, host: str, port: int, max_conns: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.idle: list[Conn] = []
        self.slots = asyncio.Semaphore(max_conns)
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.connects = 0
        self.elapsed = 0.0
        self.done = 0
        self.scheduled = 0
        self.aborted_at: int | None = None

    async def send(self, request: bytes, due: float) -> None:
        try:
            async with self.slots:
                await self._exchange(request, due)
        finally:
            self.done += 1

    async def _exchange(self, request: bytes, due: float) -> None:
        conn = None
        try:
            conn = await self._conn()
            status, close = await asyncio.wait_for(conn.exchange(request), self.timeout)
            self.statuses[str(status)] += 1
            self.latencies.append(time.perf_counter() - due)
            if not close and not conn.closed:
                self.idle.append(conn)
                conn = None
        except (OSError, ConnectionError, TimeoutError) as exc:
            self.statuses[type(exc).__name__] += 1
        finally:
            if conn is not None and conn.transport is not None:
                conn.transport.close()

    async def _conn(self) -> Conn:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        self.connects += 1
        _, conn = await asyncio.get_running_loop().create_connection(Conn, self.host, self.port)
        return conn


def build_requests(url: str, pool_file: Path) -> list[bytes]:
    parts = urlsplit(url)
    out = []
    for line in pool_file.read_text(encoding="utf-8").splitlines():
        query, _, body = line.partition("\t")
        raw = body.encode()
        out.append(
            f"POST {parts.path}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n".encode() + raw
        )
    return out


async def drive(client: Client, requests: list[bytes], rate: float, count: int, max_backlog: int) -> float:
    """Send on schedule; stop early once ``max_backlog`` requests are unanswered (the rate is lost)."""
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
    loop = asyncio.get_running_loop()
    tasks = set()
    start = time.perf_counter() + 0.05
    for i in range(count):
        if i - client.done > max_backlog:
            client.aborted_at = i
            for task in tasks:
                task.cancel()
            break
        client.scheduled = i + 1
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(client.send(requests[i], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        results = await asyncio.gather(*list(tasks), return_exceptions=True)
        # Dropped once the rate was lost: not server errors, counted apart.
        client.statuses["cancelled"] += sum(isinstance(r, asyncio.CancelledError) for r in results)
    return time.perf_counter() - start


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[idx]


def summarize(client: Client, rate: float, elapsed: float, cpu_s: float) -> dict[str, object]:
    lat = sorted(client.latencies)
    ok = sum(v for k, v in client.statuses.items() if k.startswith("2"))
    count = client.scheduled
    return {
        "offered_rate": rate, "sent": count, "elapsed_s": round(elapsed, 3), "aborted_at": client.aborted_at,
        "achieved_rate": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "ok": ok, "non2xx": count - ok - client.statuses["cancelled"], "statuses": dict(client.statuses),
        "connects": client.connects,
        "lat_ms": {p: round(percentile(lat, q) * 1000, 3)
                   for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100))},
        "client_cpu_us_per_req": round(cpu_s * 1e6 / count, 1) if count else None,
    }


async def _go(host: str, port: int, args: argparse.Namespace, requests: list[bytes], count: int) -> Client:
    client = Client(host, port, args.max_conns, args.timeout)
    client.elapsed = await drive(client, requests, args.rate, count, int(args.rate * args.max_backlog))
    return client


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("pool", type=Path, help="tab-separated query and body, one request a line")
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--max-conns", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--max-backlog", type=float, default=3.0,
                    help="stop once this many seconds' worth of requests are unanswered (server overloaded)")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args(argv)
    requests = build_requests(args.url, args.pool)
    count = int(args.rate * args.duration)
    if count > len(requests):
        sys.exit(f"pool has {len(requests)} requests, the run needs {count}: it must not wrap")
    parts = urlsplit(args.url)
    runner = asyncio.run
    if not args.no_uvloop:
        import uvloop

        runner = uvloop.run
    cpu0 = time.process_time()
    client = runner(_go(parts.hostname or "127.0.0.1", parts.port or 80, args, requests, count))
    elapsed, cpu = client.elapsed, time.process_time() - cpu0
    print(json.dumps(summarize(client, args.rate, elapsed, cpu)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
