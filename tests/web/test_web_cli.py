"""``mamori dashboard`` in a child process on a free port of 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from web_support import Consortium, free_port


@pytest.mark.slow
def test_dashboard_command_serves_and_logs_in(consortium: Consortium, tmp_path: Path) -> None:
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "mamori"), "dashboard", "--db", consortium.store.url, "--results",
           str(consortium.results_dir), "--port", str(port), "--label-window", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(base + "/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "mamori dashboard did not start within 90 s"
                time.sleep(0.2)
        assert r.status_code == 200 and "API key" in r.text
        with httpx.Client(base_url=base, timeout=5, follow_redirects=True) as client:
            r = client.post("/login", data={"member": "bank-a", "key": consortium.keys["bank-a"]})
            assert r.status_code == 200 and "bank-a (Bank A)" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
