"""Benchmark: the nginx reader against plain-Python ``re`` loops over the same generated file, in one run.

Usage::

    .venv/bin/python benchmarks/ingest.py [--lines 1000000] [--seed 7] [--repeat 1]

Generates ``--lines`` nginx lines (the layout ``mamori.events.write_events`` writes: combined format plus
``request_time= request_length= remote_port= host= request_id= ja3= msec=``) into a temporary folder, then
times, over that same file:

1. ``mamori``: ``iter_event_batches(path, "nginx")``, canonical typed frames (timestamps, ints, split URLs);
2. ``re loop (parse)``: a plain-Python loop that matches each line with one ``re`` pattern and converts the
   fields to the same typed values (ints, a UTC datetime from msec, method/path/query/version), collecting
   rows in a list: what a hand-written parser does;
3. ``re loop (match only)``: the same loop that only matches and keeps ``m.groups()``: a lower bound on any
   pure-Python parser;
4. ``mamori (combined)``: the reader on the same records cut back to plain combined format (what a stock
   nginx writes), which takes the combined fast path rather than the writer-layout one (``--no-combined``
   skips it).

With ``--repeat N`` the readers run in N interleaved rounds (1, 2, 3, 4, 1, 2, ...) and each keeps its
fastest round, so a change in the machine's load hits all of them alike. Prints wall seconds, lines/s and
CPU seconds per line (all threads of the process; steadier than wall time on a shared machine) for each,
both ratios, whether each goal is met, plus versions, hardware, load average and the seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from mamori.events import conform, iter_event_batches, write_events

NGINX_RE = re.compile(
    r'^(\S+) \S+ (\S+) \[([^\]]*)\] "([^"]*)" (\d{3}|-) (\d+|-) "([^"]*)" "([^"]*)"'
    r" request_time=(\S*) request_length=(\S*) remote_port=(\S*) host=\"([^\"]*)\" request_id=\"([^\"]*)\""
    r" ja3=\"([^\"]*)\" msec=(\S*)$"
)
UTC = dt.UTC
# Stock nginx "combined" (what `log_format combined` writes): the time is only in [$time_local].
COMBINED_RE = re.compile(r'^(\S+) \S+ (\S+) \[([^\]]*)\] "([^"]*)" (\d{3}|-) (\d+|-) "([^"]*)" "([^"]*)"')


def generate(path: Path, lines: int, seed: int) -> int:
    """Write ``lines`` realistic nginx lines; return the file size in bytes."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 5, 1, tzinfo=UTC)
    paths = np.array(
        ["/v1/accounts", "/v1/login", "/v1/transfers", "/v1/payees", "/static/app.js", "/v1/otp/verify"], dtype=object
    )
    agents = np.array(
        [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
            "okhttp/4.12.0",
            "BankApp/5.2.1 (Android 14; Pixel 8)",
        ],
        dtype=object,
    )
    chunk = 250_000
    written = 0
    for off in range(0, lines, chunk):
        n = min(chunk, lines - off)
        offsets = np.sort(rng.integers(0, 86_400_000_000, n))
        ips = [f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 255, (n, 4))]
        frame = pl.DataFrame(
            {
                "@timestamp": pl.Series([start] * n).dt.replace_time_zone(None).dt.replace_time_zone("UTC")
                + pl.Series(offsets).cast(pl.Duration("us")),
                "source.ip": ips,
                "source.port": rng.integers(1024, 65535, n).astype(np.int32),
                "url.domain": "api.bank.example",
                "url.path": paths[rng.integers(0, len(paths), n)].tolist(),
                "url.query": np.where(rng.random(n) < 0.3, "page=2&size=50", None).tolist(),
                "http.request.method": np.where(rng.random(n) < 0.7, "GET", "POST").tolist(),
                "http.version": "1.1",
                "http.request.id": [f"{x:032x}" for x in rng.integers(0, 2**62, n)],
                "http.request.referrer": np.where(rng.random(n) < 0.5, "https://ib.bank.example/", None).tolist(),
                "http.request.bytes": rng.integers(200, 4000, n),
                "http.response.status_code": rng.choice([200, 200, 200, 302, 401, 404, 500], n).astype(np.int32),
                "http.response.body.bytes": rng.integers(0, 50_000, n),
                "event.duration": rng.integers(1, 2_000, n) * 1_000_000,
                "user_agent.original": agents[rng.integers(0, len(agents), n)].tolist(),
                "tls.client.ja3": "771,4865-4866-4867,0-23-65281,29-23-24,0",
            }
        )
        write_events(conform(frame), path, "nginx", append=written > 0)
        written += n
    return path.stat().st_size


def cut_to_combined(path: Path, out: Path) -> None:
    """Write ``path``'s lines without the writer's trailing key=value fields: plain combined format."""
    with path.open("rb") as src, out.open("wb") as dst:
        for line in src:
            dst.write(line.split(b" request_time=", 1)[0].rstrip(b"\n") + b"\n")


def run_mamori(path: Path) -> int:
    rows = 0
    for batch in iter_event_batches(path, "nginx"):
        rows += batch.height
    return rows


def _int(text: str) -> int | None:
    return None if text == "-" else int(text)


def run_re_parse(path: Path) -> int:
    """Match, then convert to the same typed values the reader produces (no polars frame at the end)."""
    rows: list[tuple[object, ...]] = []
    append = rows.append
    match = NGINX_RE.match
    fromtimestamp = dt.datetime.fromtimestamp
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            m = match(line.rstrip("\n"))
            if m is None:
                continue
            ip, user, _time, request, status, size, ref, ua, rt, rl, port, host, rid, ja3, msec = m.groups()
            method, _, rest = request.partition(" ")
            target, _, version = rest.rpartition(" ")
            path_part, sep, query = target.partition("?")
            secs, _, frac = msec.partition(".")
            ts = fromtimestamp(int(secs), UTC).replace(microsecond=int(frac.ljust(6, "0")))
            rts, _, rtf = rt.partition(".")
            append(
                (
                    ts,
                    ip,
                    None if user == "-" else user,
                    method,
                    version.removeprefix("HTTP/"),
                    host,
                    path_part,
                    query if sep else None,
                    _int(status),
                    _int(size),
                    None if ref == "-" else ref,
                    None if ua == "-" else ua,
                    int(rts) * 1_000_000_000 + int(rtf.ljust(9, "0")),
                    _int(rl),
                    _int(port),
                    rid,
                    ja3,
                )
            )
    return len(rows)


def run_re_parse_combined(path: Path) -> int:
    """The plain loop on stock combined lines: match, then the same typed values (time via strptime)."""
    rows: list[tuple[object, ...]] = []
    append = rows.append
    match = COMBINED_RE.match
    strptime = dt.datetime.strptime
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            m = match(line.rstrip("\n"))
            if m is None:
                continue
            ip, user, time_local, request, status, size, ref, ua = m.groups()
            method, _, rest = request.partition(" ")
            target, _, version = rest.rpartition(" ")
            path_part, sep, query = target.partition("?")
            append(
                (
                    strptime(time_local, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC),
                    ip,
                    None if user == "-" else user,
                    method,
                    version.removeprefix("HTTP/"),
                    path_part,
                    query if sep else None,
                    _int(status),
                    _int(size),
                    None if ref == "-" else ref,
                    None if ua == "-" else ua,
                )
            )
    return len(rows)


def run_re_match(path: Path) -> int:
    rows: list[tuple[str | None, ...]] = []
    append = rows.append
    match = NGINX_RE.match
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            m = match(line.rstrip("\n"))
            if m is not None:
                append(m.groups())
    return len(rows)


def _timed(fn, path: Path, repeat: int) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    """Rows, best wall seconds and the CPU seconds (all threads of this process) of that run."""
    best, best_cpu, rows = float("inf"), float("inf"), 0
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        rows = fn(path)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        if wall < best:
            best, best_cpu = wall, cpu
    return rows, best, best_cpu


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds; each reader keeps its best")
    parser.add_argument("--no-combined", action="store_true", help="skip the plain-combined rendering")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mamori-bench-ingest-") as tmp:
        path = Path(tmp) / "gateway.log"
        t0 = time.perf_counter()
        size = generate(path, args.lines, args.seed)
        gen_s = time.perf_counter() - t0
        readers: list[tuple[str, Callable[[Path], int], Path]] = [
            ("mamori", run_mamori, path),
            ("re loop (parse)", run_re_parse, path),
            ("re loop (match only)", run_re_match, path),
        ]
        if not args.no_combined:
            combined = Path(tmp) / "combined.log"
            cut_to_combined(path, combined)
            readers.append(("mamori (combined)", run_mamori, combined))
            readers.append(("re loop (combined)", run_re_parse_combined, combined))
        for _, _, file in readers:
            file.read_bytes()  # warm the page cache so every reader starts equal
        load_before = os.getloadavg()
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            for name, fn, file in readers:
                rows, secs, cpu = _timed(fn, file, 1)
                if rows != args.lines:
                    sys.exit(f"{name} produced {rows} rows, expected {args.lines}")
                if name not in best or secs < best[name][0]:
                    best[name] = (secs, cpu)
        load_after = os.getloadavg()

    results = {name: args.lines / secs for name, (secs, _) in best.items()}
    cpu_ns = {name: cpu / args.lines * 1e9 for name, (_, cpu) in best.items()}
    for name, (secs, cpu) in best.items():
        print(
            f"{name:22s} {secs:8.2f} s wall  {results[name]:12,.0f} lines/s   "
            f"CPU {cpu:7.2f} s = {cpu_ns[name]:6,.0f} ns/line"
        )
    ours, loop = results["mamori"], results["re loop (parse)"]
    wall_ratio = ours / loop
    cpu_ratio = cpu_ns["re loop (parse)"] / cpu_ns["mamori"]
    print()
    print(f"ratio mamori / re loop (parse), wall    : {wall_ratio:.2f}x")
    print(f"ratio mamori / re loop (match only), wall: {ours / results['re loop (match only)']:.2f}x")
    print(
        f"CPU per line, re loop (parse) / mamori  : {cpu_ratio:.2f}x "
        "(steadier under load; mamori's CPU counts all its threads, the loop uses one core)"
    )
    combined_ratio = None
    if "mamori (combined)" in results:
        combined_ratio = results["mamori (combined)"] / results["re loop (combined)"]
        print(
            f"mamori on plain combined                : {results['mamori (combined)']:,.0f} lines/s, "
            f"{cpu_ns['mamori (combined)']:,.0f} ns CPU/line"
        )
        print(
            f"ratio on stock combined, wall / CPU     : {combined_ratio:.2f}x / "
            f"{cpu_ns['re loop (combined)'] / cpu_ns['mamori (combined)']:.2f}x (plain loop parses time with strptime)"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print()
    print(f"goal >= 300,000 lines/s (wall)           : {ours:,.0f} lines/s -> {verdict(ours >= 300_000)}")
    print(f"goal >= 5x the plain loop (wall)         : {wall_ratio:.2f}x -> {verdict(wall_ratio >= 5)}")
    print(f"same ratio in CPU per line (no load luck): {cpu_ratio:.2f}x -> {verdict(cpu_ratio >= 5)}")
    if combined_ratio is not None:
        print(f"goal >= 5x on stock combined (wall)      : {combined_ratio:.2f}x -> {verdict(combined_ratio >= 5)}")
    print()
    print(f"dataset  : {args.lines:,} nginx lines, {size / 1e6:.1f} MB, generated in {gen_s:.1f} s, seed {args.seed}")
    print(
        f"versions : python {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}, "
        f"mamori commit {_commit()}"
    )
    print(
        f"hardware : {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}, "
        f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'default')} (pool {pl.thread_pool_size()})"
    )
    print(
        f"load avg : {load_before[0]:.2f} before, {load_after[0]:.2f} after, {args.repeat} interleaved round(s) "
        "(other work on the machine slows every reader; wall figures need an idle machine)"
    )


if __name__ == "__main__":
    main()
