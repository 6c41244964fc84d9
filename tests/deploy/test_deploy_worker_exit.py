"""The ClientApp worker beside a SuperNode: it must exit with the SuperNode, even while the Runtime API is down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_exits_with_a_supernode_that_never_served_its_runtime_api() -> None:
    # A SuperNode refused by the SuperLink exits (Flower's code 305) without ever opening its Runtime API; the worker
    # is by then polling that API. Here a stand-in exits with 7 after the worker has started polling a closed port.
    supernode = [sys.executable, "-c", "import time; time.sleep(15); raise SystemExit(7)"]
    cmd = [sys.executable, "-m", "mamori.deploy.worker", "--runtime-api-address", f"127.0.0.1:{_closed_port()}"]
    started = time.monotonic()
    worker = subprocess.run([*cmd, "--", *supernode], capture_output=True, text=True, timeout=120, check=False)
    assert worker.returncode == 7, worker.stderr[-2000:]
    assert time.monotonic() - started < 60
