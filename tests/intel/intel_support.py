from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from mamori.store import Store, StoreConfig

TAXII = "application/taxii+json;version=2.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    name: str
    config: StoreConfig
    cli_url: str  # what a separate process passes to --db

    def drop(self) -> None:
        if self.config.schema_name:
            engine = create_engine(self.config.url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.config.schema_name}" CASCADE'))
            engine.dispose()


def make_backend(name: str, tmp: Path) -> Backend:
    if name == "sqlite":
        path = tmp / f"intel-{uuid.uuid4().hex[:8]}.db"
        return Backend(name, StoreConfig(url=str(path)), f"sqlite:///{path}")
    url = os.environ.get("MAMORI_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MAMORI_TEST_POSTGRES_URL is not set; PostgreSQL tests run in CI (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in url else "?"
    return Backend(name, StoreConfig(url=url, schema_name=schema), f"{url}{sep}options=-csearch_path%3D{schema}")


class ServerProcess:
    """``mamori intel serve`` in a child process on a free port."""

    def __init__(self, db_url: str, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/taxii2/"
        cmd = [sys.executable, "-c", "from mamori.cli import main; main()", "intel", "serve", "--db", db_url,
               "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180  # importing the CLI takes long on a loaded machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start within 180 s")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class World:
    backend: Backend
    store: Store
    server: ServerProcess
    keys: dict[str, str] = field(default_factory=dict)
    shared: str = ""
    public: str = ""

    def headers(self, member: str, **extra: str) -> dict[str, str]:
        return {"Accept": TAXII, "Authorization": f"Bearer {self.keys[member]}", **extra}

    def http(self, method: str, path: str, member: str = "alice", **kw: object) -> httpx.Response:
        headers = self.headers(member) | dict(kw.pop("headers", {}) or {})  # type: ignore[arg-type]
        return httpx.request(method, self.server.base + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


