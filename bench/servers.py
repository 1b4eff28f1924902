"""The servers under test: WeRoBot (separate venv, gunicorn sync workers), gradbot serve, a bare floor.

Each measurement starts its own server in a fresh temp directory and stops it after, so runs do not
share warm state or leak idle CPU into each other. CPU is read from /proc for the whole process tree.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WEROBOT_VENV = BENCH / ".venv-werobot"
WEROBOT_PINS = ("werobot==1.13.1", "gunicorn==27.0.1")
GRADBOT = REPO / ".venv" / "bin" / "gradbot"
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
ERROR_LINE = re.compile(r"Traceback \(most recent|\b(ERROR|CRITICAL)\b")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "werobot" | "gradbot" | "raw"
    workers: int = 1
    safe: bool = False
    sessions: bool = True  # WeRoBot only

    @property
    def label(self) -> str:
        if self.kind == "werobot":
            return f"WeRoBot gunicorn -w {self.workers}, sessions {'on (SQLite)' if self.sessions else 'off'}"
        if self.kind == "raw":
            return "bare asyncio floor"
        return f"gradbot {self.workers} proc, {'safe mode' if self.safe else 'plain'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_werobot_venv(log: Path) -> Path:
    """Create bench/.venv-werobot with the pinned WeRoBot and gunicorn (never the project venv)."""
    stamp = WEROBOT_VENV / ".bench-installed"
    if stamp.exists() and stamp.read_text() == " ".join(WEROBOT_PINS):
        return WEROBOT_VENV
    print(f"creating {WEROBOT_VENV.relative_to(REPO)} with {' '.join(WEROBOT_PINS)} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    with log.open("ab") as out:
        subprocess.run([base, "-m", "venv", "--clear", str(WEROBOT_VENV)], check=True, stdout=out, stderr=out)
        pip = [str(WEROBOT_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *WEROBOT_PINS], check=True, stdout=out, stderr=out)
    stamp.write_text(" ".join(WEROBOT_PINS))
    return WEROBOT_VENV


def gradbot_available() -> tuple[bool, str]:
    if not GRADBOT.exists():
        return False, f"{GRADBOT} missing"
    proc = subprocess.run([str(GRADBOT), "serve", "--help"], capture_output=True, text=True, check=False,
                          cwd=REPO, timeout=60)
    if proc.returncode != 0:
        return False, (proc.stderr.strip().splitlines() or ["gradbot serve --help failed"])[-1]
    return True, "ok"


@dataclass
class Running:
    variant: Variant
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wechat"

    def tree(self) -> list[int]:
        return process_tree(self.proc.pid)

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_errors(self, since: int) -> list[str]:
        """Error lines the server logged after byte ``since``: a run that hit them measured an error path."""
        with self.log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
        return [ln for ln in text.splitlines() if ERROR_LINE.search(ln)]

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _command(v: Variant, port: int, env: dict[str, str]) -> list[str]:
    if v.kind == "werobot":
        env["BENCH_WEROBOT_SESSIONS"] = "1" if v.sessions else "0"
        return [str(WEROBOT_VENV / "bin" / "gunicorn"), "-w", str(v.workers), "-k", "sync",
                "-b", f"127.0.0.1:{port}", "--pythonpath", str(BENCH), "--log-level", "warning",
                "werobot_echo:app"]
    if v.kind == "raw":
        return [sys.executable, str(BENCH / "raw_server.py"), str(port)]
    return [str(GRADBOT), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(v.workers)]


def start(v: Variant, env_base: dict[str, str], keep_dir: Path) -> Running:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{v.name}-"))
    env = dict(os.environ) | env_base
    if v.kind == "gradbot":
        env["GRADBOT_DATA_DIR"] = str(workdir / "var")
        if not v.safe:
            env.pop("GRADBOT_WECHAT_AES_KEY", None)
    log = keep_dir / f"{v.name}.log"
    cmd = _command(v, port, env)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    run = Running(v, proc, port, workdir, log)
    try:
        wait_ready(run)
    except Exception:
        stop(run)
        raise
    return run


def wait_ready(run: Running, timeout: float = 40.0) -> None:
    """gradbot: GET /readyz is 200 and every worker is up; others: the port answers HTTP."""
    path = "/readyz" if run.variant.kind == "gradbot" else "/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise RuntimeError(f"{run.variant.name} exited with {run.proc.returncode}:\n{run.log_tail()}")
        status = _http_status(f"http://127.0.0.1:{run.port}{path}")
        ready = status == 200 if path == "/readyz" else status is not None
        if ready and _all_workers_up(run):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{run.variant.name} not ready after {timeout}s:\n{run.log_tail()}")


def _all_workers_up(run: Running) -> bool:
    """gradbot workers each bind their own SO_REUSEPORT socket; gunicorn's master forks its workers."""
    if run.variant.kind == "gradbot":
        return listeners(run.port) >= run.variant.workers
    if run.variant.kind == "werobot":
        return len(run.tree()) >= run.variant.workers + 1
    return True


def listeners(port: int) -> int:
    """Listening IPv4 sockets on ``port``, from /proc/net/tcp (state 0A)."""
    suffix = f":{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(suffix) and fields[3] == "0A":
            count += 1
    return count


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return None


def stop(run: Running) -> None:
    """SIGTERM the server's own process group (started with start_new_session), then SIGKILL."""
    if run.proc.poll() is None:
        try:
            os.killpg(run.proc.pid, signal.SIGTERM)
            run.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    shutil.rmtree(run.workdir, ignore_errors=True)


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(int(stat[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; [0] is state, [1] ppid, [11] utime, [12] stime.
    return raw[raw.rindex(")") + 2:].split()


def cpu_us(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        stat = _stat(pid)
        if stat is not None:
            total += (int(stat[11]) + int(stat[12])) * TICK_US
    return total


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)
