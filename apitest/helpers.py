"""Helpers shared by the apitest suite: the bakch server process, the CLI runner, polling and
file-tree utilities.  Imported by conftest.py and the test modules (pytest puts this folder on
sys.path because it has no __init__.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import requests
from backupchan import API

REPO = Path(__file__).resolve().parent.parent
KEY_RE = re.compile(r"^bakch-[0-9a-f]{64}$")
STARTUP_TIMEOUT = 20.0
JOB_TIMEOUT = 30.0
# A template with only the backup id: deterministic names to look for on disk.
TEMPLATE = "b-$I"


# ---------------------------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------------------------


def poll(check: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Calls `check` until it returns something truthy (returned) or `timeout` passes (fails,
    naming `what` and the last value or exception seen)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def _base_and_headers(where) -> tuple[str, dict]:
    if isinstance(where, BakchServer):
        return where.url, where.headers()
    if isinstance(where, API):
        return where.connection.base_url, where.connection.headers()
    if isinstance(where, str):
        return where.rstrip("/"), {}
    raise TypeError(f"wait_job needs a BakchServer, a backupchan.API or a base URL, not {where!r}")


def wait_job(where, job_id, timeout: float = JOB_TIMEOUT) -> dict:
    """Polls GET /api/jobs until the delayed job `job_id` is FINISHED or ERROR; returns its JSON.

    `where` is a BakchServer, a backupchan.API or a base URL (`http://127.0.0.1:PORT`)."""
    base, headers = _base_and_headers(where)

    def done():
        reply = requests.get(f"{base}/api/jobs", headers=headers, timeout=10)
        body = reply.json()
        assert body.get("success") is True, body
        for job in body["delayed"]:
            if str(job["id"]) == str(job_id):
                return job if job["status"] in ("FINISHED", "ERROR") else None
        return None

    return poll(done, timeout, f"job #{job_id} to finish")


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bakch_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKCH_")}
    env["BAKCH_DATA_DIR"] = str(data_dir)
    return env


def new_api_key(binary: Path, data_dir: Path, overwrite: bool = False) -> str:
    """Runs `bakch newapikey` and returns the key it printed (last stdout line), checking that it
    also landed in <data>/apikey.json."""
    cmd = [str(binary), "newapikey", "--data-dir", str(data_dir)]
    if overwrite:
        cmd.append("--overwrite")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=bakch_env(data_dir))
    assert proc.returncode == 0, f"newapikey failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"newapikey printed nothing: {proc.stderr}"
    key = lines[-1]
    assert KEY_RE.match(key), f"newapikey printed {key!r}, not bakch-<64 hex>"
    stored = json.loads((data_dir / "apikey.json").read_text())
    assert stored == {"key": key}, stored
    return key


class BakchServer:
    """One `bakch serve` process on a free loopback port."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, key: str | None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.key = key
        self.proc: subprocess.Popen | None = None
        self.port = 0

    # -- process ---------------------------------------------------------------------------

    def start(self) -> "BakchServer":
        self.port = free_port()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--data-dir", str(self.data_dir),
                 "--bind", f"127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=bakch_env(self.data_dir),
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"bakch exited with {self.proc.returncode}:\n{self.server_log()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
            reply = requests.get(f"{self.url}/api/stats", headers=self.headers(), timeout=2)
            reply.json()
            return True

        try:
            poll(ready, STARTUP_TIMEOUT, f"bakch to answer on port {self.port}", interval=0.1)
        except AssertionError:
            self.stop()
            raise AssertionError(f"bakch did not come up in {STARTUP_TIMEOUT}s:\n{self.server_log()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def kill(self):
        """SIGKILL: a crash, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> "BakchServer":
        """Stops and starts the same data folder again (on a new free port)."""
        self.stop()
        return self.start()

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    # -- clients ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> API:
        """A fresh official client for the current port and key."""
        return API("127.0.0.1", self.port, self.key or "")

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def http(self, method: str, path: str, **kw) -> requests.Response:
        """A raw request to `/api/<path>` with the right key, for shapes the lib hides."""
        headers = {**self.headers(), **kw.pop("headers", {})}
        return requests.request(method, f"{self.url}/api/{path.lstrip('/')}", headers=headers,
                                timeout=kw.pop("timeout", 30), **kw)

    def json(self, method: str, path: str, **kw) -> dict:
        reply = self.http(method, path, **kw)
        body = reply.json()
        assert isinstance(body, dict) and "success" in body, f"{method} {path}: {reply.status_code} {body!r}"
        return body


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


def cli_executable() -> str:
    beside = Path(sys.executable).with_name("backupchan")
    if beside.exists():
        return str(beside)
    found = shutil.which("backupchan")
    if not found:
        raise RuntimeError("the `backupchan` command (PyPI backupchan-cli) is not installed")
    return found


class Cli:
    """Runs the official `backupchan` command in an isolated home configured for one server."""

    def __init__(self, home: Path, server: BakchServer):
        self.home = home
        self.server = server
        self.exe = cli_executable()
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        (home / "cwd").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "BAKCH_"))}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "cfg"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CACHE_HOME=str(home / "cache"),
            PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
            TMPDIR=str(home / "tmp"),  # the CLI leaves its folder tarballs here
            PYTHONUNBUFFERED="1",
        )
        self.env = env

    def configure(self):
        if self.server.key:
            proc = self("config", "new", "-H", "127.0.0.1", "-p", str(self.server.port), "-a", self.server.key)
        else:
            # An empty key can only be stored interactively (see notes P12).
            proc = self("config", "new", "-i", input=f"127.0.0.1\n{self.server.port}\n\n")
        assert proc.returncode == 0, proc
        assert "Configuration saved." in proc.stdout, proc
        return self

    def __call__(self, *args: str, input: str | None = None, cwd: Path | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.exe, *map(str, args)], input=input, capture_output=True, text=True,
            env=self.env, cwd=str(cwd or self.home / "cwd"), timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.exe, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, env=self.env, cwd=str(self.home / "cwd"),
        )


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stdout.splitlines()


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"{proc.args[1:]} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

SAMPLE_TREE = {
    "a.txt": b"alpha\n",
    "sub/b.txt": b"beta " * 3000,
    "sub/deeper/c.bin": bytes(range(256)) * 300,
    "sub/empty.dat": b"",
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root`, by posix path relative to it."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def prefixed(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{prefix}/{k}": v for k, v in files.items()}


def seq_list(files: dict[str, bytes]):
    """The file list the CLI would build for a folder holding `files` (path "/" or "/dir")."""
    from backupchan import SequentialFile

    out = []
    for rel in files:
        d, _, name = rel.rpartition("/")
        out.append(SequentialFile("/" + d if d else "/", name, False))
    return out


def extract_tar(tar_path: Path, dest: Path) -> dict[str, bytes]:
    """Checks the members are relative and inside, extracts, returns the file tree."""
    with tarfile.open(tar_path, "r:") as tar:  # "r:" = uncompressed, as promised
        for m in tar.getmembers():
            assert not m.name.startswith("/") and ".." not in Path(m.name).parts, m.name
        tar.extractall(dest, filter="data")
    return read_tree(dest)


# ---------------------------------------------------------------------------------------------
# Backups
# ---------------------------------------------------------------------------------------------


def raw_backups(server: BakchServer, target_id: str) -> list[dict]:
    body = server.json("GET", f"target/{target_id}")
    assert body["success"] is True, body
    return body["backups"]


def upload(server: BakchServer, target_id: str, path: Path, manual: bool = True,
           api: API | None = None) -> dict:
    """Uploads one file through the lib, waits for its job, returns the new backup's raw JSON."""
    api = api or server.api
    before = {b["id"] for b in raw_backups(server, target_id)}
    with open(path, "rb") as f:
        job_id = api.upload_backup(target_id, f, path.name, manual)
    return finish_upload(server, target_id, job_id, before)


def upload_folder(server: BakchServer, target_id: str, folder: Path, manual: bool = True) -> dict:
    before = {b["id"] for b in raw_backups(server, target_id)}
    job_id = server.api.upload_backup_folder(target_id, str(folder), manual)
    return finish_upload(server, target_id, job_id, before)


def finish_upload(server: BakchServer, target_id: str, job_id, before: set) -> dict:
    assert isinstance(job_id, int), f"job_id should be an integer, got {job_id!r}"
    job = wait_job(server, job_id)
    assert job["status"] == "FINISHED", f"upload job ended {job['status']}: {job.get('error')!r}"
    new = [b for b in raw_backups(server, target_id) if b["id"] not in before]
    assert len(new) == 1, f"expected exactly one new backup after job #{job_id}, got {new}"
    return new[0]


def wait_new_backup(server: BakchServer, target_id: str, before: set, timeout: float = JOB_TIMEOUT) -> dict:
    """For uploads that report no job id (seq finish): polls the target until one new backup shows."""
    def new():
        found = [b for b in raw_backups(server, target_id) if b["id"] not in before]
        assert len(found) <= 1, found
        return found[0] if found else None

    return poll(new, timeout, f"a new backup in target {target_id}")


def parse_created(b: dict) -> datetime:
    dt = datetime.fromisoformat(b["created_at"])
    assert dt.tzinfo is not None, f"created_at without offset: {b['created_at']!r}"
    return dt.astimezone(timezone.utc)


def make_target(api: API, location: Path, name: str = "t", kind: str = "single",
                template: str = TEMPLATE, criteria: str = "none", value: int = 0,
                action: str = "recycle", dedup: bool = False, alias: str | None = None,
                min_backups: int | None = None, tags: list[str] | None = None) -> str:
    from backupchan import BackupRecycleAction, BackupRecycleCriteria, BackupType

    location.mkdir(parents=True, exist_ok=True)
    tid = api.new_target(name, BackupType(kind), BackupRecycleCriteria(criteria), value,
                         BackupRecycleAction(action), str(location), template, dedup, alias,
                         min_backups, tags if tags is not None else [])
    assert isinstance(tid, str) and tid, tid
    return tid
