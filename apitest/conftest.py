"""Fixtures for driving the real bakch binary through the official Backup-chan client and CLI.

* `bakch_bin`: the binary (env BAKCH_BIN, default <repo>/target/debug/bakch).
* `server(key=False)`: a factory; each call starts `bakch serve` on a free loopback port with a
  fresh data folder (and, with key=True, an API key made by `bakch newapikey`). Every server a
  test started is stopped when the test ends. The object has url, port, data_dir, key, api
  (a backupchan.API), http()/json() for raw requests, restart() and stop().
* `loc`: a factory of absolute target locations outside every data folder.
* `cli(server)`: a factory of configured `backupchan` runners (isolated HOME, XDG dirs and a
  plaintext keyring); calling the runner returns a subprocess.CompletedProcess.
* `wait_job(api_or_server_or_url, job_id, timeout)`: polls /api/jobs until the job is done.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import REPO, BakchServer, Cli, new_api_key, wait_job as _wait_job

__all__ = ["wait_job"]
wait_job = _wait_job


@pytest.fixture(scope="session")
def bakch_bin() -> Path:
    path = Path(os.environ.get("BAKCH_BIN") or REPO / "target" / "debug" / "bakch")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"bakch binary not found at {path}: run `cargo build` or set BAKCH_BIN", pytrace=False)
    return path.resolve()


@pytest.fixture
def server(bakch_bin, tmp_path_factory):
    started: list[BakchServer] = []

    def start(key: bool = False) -> BakchServer:
        base = tmp_path_factory.mktemp("bakch")
        data_dir = base / "data"
        data_dir.mkdir()
        api_key = new_api_key(bakch_bin, data_dir) if key else None
        s = BakchServer(bakch_bin, data_dir, base / "server.log", api_key)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def loc(tmp_path_factory):
    """`loc("name")` → a fresh absolute folder for a target, outside the data folders."""
    base = tmp_path_factory.mktemp("locations")

    def make(name: str = "loc") -> Path:
        p = base / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    return make


@pytest.fixture
def cli(tmp_path_factory):
    def make(server: BakchServer) -> Cli:
        return Cli(tmp_path_factory.mktemp("clihome"), server).configure()

    return make


@pytest.fixture
def work(tmp_path) -> Path:
    """A scratch folder for source files and downloads (not a target location)."""
    return tmp_path


@pytest.fixture(autouse=True)
def _lib_tempdir(tmp_path_factory, monkeypatch):
    """The lib's folder upload leaves its tarball in the temp folder: keep that in pytest's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("libtmp")))
