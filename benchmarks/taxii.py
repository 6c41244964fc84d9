"""TAXII 2.1 server throughput: add N indicators in envelopes, then read them all back by paging.

Starts `mamori intel serve` as a child process on a free port for each (backend, validation mode), posts
pre-serialised envelopes over HTTP (so client-side STIX building is not timed), then pages through the
collection with `limit` + `next`. Prints objects/s both ways.

    .venv/bin/python benchmarks/taxii.py                       # SQLite, full + library validation
    MAMORI_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/taxii.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from mamori.intel import identity, ip_indicator, serialize
from mamori.intel.taxii import add_member, create_collection
from mamori.store import StoreConfig, open_store

TAXII = "application/taxii+json;version=2.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children, i.e. the server's validation workers (Linux /proc),
    so rates can be read independently of machine load."""
    try:
        total = _own_cpu_seconds(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            try:
                total += _own_cpu_seconds(int(child))
            except (OSError, IndexError, ValueError):
                pass  # a worker that exited between the two reads
        return total
    except (OSError, IndexError, ValueError):
        return float("nan")


def make_objects(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    me = identity("Bench Bank")
    seen: set[str] = set()
    out = []
    while len(out) < n:
        ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ip in seen:
            continue
        seen.add(ip)
        out.append(serialize(ip_indicator(ip, created_by=me, confidence=rng.randrange(40, 100), tlp="green",
                                          valid_until="2030-01-01T00:00:00Z")))
    return out


def run(backend: str, validation: str, objects: list[dict], envelope: int, page: int, pg_url: str | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mamori-bench-"))
    schema = None
    if backend == "sqlite":
        cfg = StoreConfig(url=str(tmp / "bench.db"))
        cli_url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        assert pg_url
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        cfg = StoreConfig(url=pg_url, schema_name=schema)
        cli_url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    store = open_store(cfg)
    _, key = add_member(store, "bench", "Bench Bank", write=["*"], rate_limit=0)
    cid = create_collection(store, "bench").id
    store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", "from mamori.cli import main; main()", "intel", "serve",
                             "--db", cli_url, "--port", str(port), "--validation", validation,
                             "--max-content-length", str(50 * 1024 * 1024)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    headers = {"Accept": TAXII, "Content-Type": TAXII, "Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            for _ in range(600):
                try:
                    client.get("/taxii2/")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            bodies = [json.dumps({"objects": objects[i:i + envelope]}).encode()
                      for i in range(0, len(objects), envelope)]
            c0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            for body in bodies:
                resp = client.post(f"/mamori/collections/{cid}/objects/", content=body)
                assert resp.status_code == 202, resp.text[:300]
            ingest = time.perf_counter() - t0
            c1 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            got = 0
            params: dict = {"limit": page}
            requests_made = 0
            while True:
                resp = client.get(f"/mamori/collections/{cid}/objects/", params=params)
                requests_made += 1
                assert resp.status_code == 200, resp.text[:300]
                env = resp.json()
                got += len(env.get("objects", []))
                if not env.get("more"):
                    break
                params = {"limit": page, "next": env["next"]}
            read = time.perf_counter() - t0
            c2 = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        if schema:
            engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))  # type: ignore[union-attr]
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
    assert got == len(objects), (got, len(objects))
    return {"backend": backend, "validation": validation, "ingest_s": ingest, "ingest_ops": len(objects) / ingest,
            "read_s": read, "read_ops": got / read, "pages": requests_made,
            "ingest_cpu_ops": len(objects) / (c1 - c0), "read_cpu_ops": got / (c2 - c1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="indicators to add")
    parser.add_argument("--envelope", type=int, default=500, help="objects per POST")
    parser.add_argument("--page", type=int, default=500, help="objects per GET page")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--validation", default="full,library", help="comma list of full/library")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    pg_url = os.environ.get("MAMORI_TEST_POSTGRES_URL")
    try:
        import subprocess as sp
        commit = sp.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    print(f"mamori TAXII benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  commit {commit}")
    print(f"python {platform.python_version()}  {platform.platform()}  cpus={os.cpu_count()}  "
          f"fastapi {version('fastapi')}  uvicorn {version('uvicorn')}  sqlalchemy {version('sqlalchemy')}  "
          f"stix2 {version('stix2')}  stix2-validator {version('stix2-validator')}")
    print(f"load average before start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs share the CPUs)")
    print(f"dataset: {args.n} ipv4 indicators (seed {args.seed}), envelopes of {args.envelope}, "
          f"pages of {args.page}")
    objects = make_objects(args.n, args.seed)
    size = sum(len(json.dumps(o)) for o in objects)
    print(f"payload: {size / 1e6:.1f} MB of JSON")
    print("obj/s = wall-clock rate; obj/cpu-s = objects per CPU-second of the server process and its validation")
    print("workers (what one idle core would sustain; the database server's own CPU is not included)")
    print(f"{'backend':<11} {'validation':<10} {'ingest s':>9} {'ingest obj/s':>13} {'obj/cpu-s':>10} {'read s':>7} "
          f"{'read obj/s':>11} {'obj/cpu-s':>10} {'pages':>6}")
    for backend in args.backends.split(","):
        if backend == "postgresql" and not pg_url:
            print("postgresql  skipped (set MAMORI_TEST_POSTGRES_URL)")
            continue
        for mode in args.validation.split(","):
            r = run(backend, mode, objects, args.envelope, args.page, pg_url)
            print(f"{r['backend']:<11} {r['validation']:<10} {r['ingest_s']:>9.2f} {r['ingest_ops']:>13,.0f} "
                  f"{r['ingest_cpu_ops']:>10,.0f} {r['read_s']:>7.2f} {r['read_ops']:>11,.0f} "
                  f"{r['read_cpu_ops']:>10,.0f} {r['pages']:>6}   load {os.getloadavg()[0]:.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
