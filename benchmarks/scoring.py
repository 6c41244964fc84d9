"""Benchmark of live detection: batch scoring of a simulated nginx log, and the scoring API under load.

Usage:
    .venv/bin/python benchmarks/scoring.py [--lines 2000000] [--rate 500] [--duration 60] [--seed 1]
        [--workdir /tmp/mamori-scoring-bench] [--csic-data-dir ../shared/data]

Prints, in one run:
- batch: end-to-end `mamori score` path (read nginx lines -> features with carried window state -> model ->
  deduplicated, explained alerts) on an N-line simulated log: events/s and peak memory (child process);
- service: p50/p99 latency of single-event POST /v1/score at a fixed request rate for a fixed time from a
  local open-loop load generator, and the throughput of batch-of-1,000 requests;
- bad input (wrong types, missing field, 10 MB body, invalid UTF-8) -> status codes, and that the service
  still answers afterwards;
- a schemathesis run against the OpenAPI spec (server errors found);
- CSIC 2010: mamori's scoring throughput on the same test requests benchmarks/crs_csic.sh replays through
  nginx + ModSecurity CRS (run that script for the CRS side);
plus versions, seed, dataset size, hardware and the load average around each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def load() -> str:
    """The 1/5/15-minute load average."""
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- data and model ------------------------------------------------------------------------------------------
def make_log(path: Path, lines: int, seed: int) -> None:
    """Simulate one bank until it has ``lines`` gateway events and write exactly that many nginx lines."""
    from mamori.events import render_lines
    from mamori.simulate import SimulationConfig, iter_bank_events

    days, scale = 7, max(0.05, lines / 2_000_000 * 0.75)
    while True:
        _profile, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=days, scale=scale, seed=seed))))
        events = events.filter(events.get_column("http.request.method").is_not_null())
        if events.height >= lines:
            break
        scale *= 1.3 * lines / max(events.height, 1)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for start in range(0, lines, 250_000):
            chunk = render_lines(events[start : min(start + 250_000, lines)], "nginx")
            fh.write("\n".join(chunk.to_list()) + "\n")
    tmp.replace(path)


def make_model(path: Path, seed: int) -> None:
    """Train the scoring model on a small simulated consortium (nginx view), as `mamori score --train-demo`."""
    from mamori.detect import train_simulated_model

    train_simulated_model(banks=2, days=2, scale=0.05, log_format="nginx", seed=seed + 100).save(path)


# ---- phase: batch (runs in a child process so its peak memory is its own) -------------------------------------
def phase_batch(log: Path, model: Path, alerts: Path, max_state_events: int) -> dict[str, object]:
    """Score the log as `mamori score LOG --model M --format nginx` does; return figures."""
    from mamori.detect import JsonlAlertSink, Scorer, ScoringConfig, ScoringModel, score_path

    try:
        from mamori.cli.allocators import batch_allocators
    except ImportError:  # a --baseline commit from before the allocator settings
        pass
    else:
        batch_allocators()  # as `mamori score` does
    try:
        from mamori.cli.allocators import batch_blas_threads
    except ImportError:  # a --baseline commit from before the BLAS setting
        pass
    else:
        batch_blas_threads()  # as `mamori score` does
    alerts.unlink(missing_ok=True)  # the sink appends
    sink = JsonlAlertSink(alerts)
    scorer = Scorer(ScoringModel.load(model), ScoringConfig(max_state_events=max_state_events), sinks=[sink])
    t0, c0 = time.perf_counter(), time.process_time()
    summary = score_path(log, scorer, fmt="nginx")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sink.close()
    return {"events": summary.events, "alerts": summary.alerts, "hits": summary.hits, "wall_s": wall,
            "cpu_s": cpu, "events_per_s": summary.events / wall, "quarantined": summary.quarantined,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "state": scorer.stats()}


def baseline_tree(commit: str, workdir: Path) -> Path:
    """The ``src/`` of an earlier commit (git archive), to run the same phase with the code before a change."""
    dest = workdir / f"baseline-{commit}"
    if not (dest / "src" / "mamori").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def run_batch_child(args: argparse.Namespace, work: Path, tag: str, src: Path | None) -> dict[str, object]:
    """The batch phase in a fresh process (its own peak RSS), with ``src`` first on the path when given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    proc = subprocess.run([PY, __file__, "--phase", "batch", "--lines", str(args.lines), "--seed", str(args.seed),
                           "--workdir", str(work), "--max-state-events", str(args.max_state_events), "--tag", tag],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"batch phase ({tag}) failed: {proc.stderr[-2000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def compare_alerts(a: Path, b: Path) -> str:
    """How two alert files differ: same ids in the same order, and the largest score difference."""
    left = [json.loads(line) for line in a.read_text().splitlines()]
    right = [json.loads(line) for line in b.read_text().splitlines()]
    same_ids = [x["id"] for x in left] == [y["id"] for y in right]
    diffs = [abs(x["score"] - y["score"]) for x, y in zip(left, right, strict=False)]
    fields = sorted({k for x, y in zip(left, right, strict=False) for k in x if x.get(k) != y.get(k)})
    return (f"{len(left):,} vs {len(right):,} alerts; same ids in the same order: {same_ids}; largest score "
            f"difference {max(diffs, default=0.0):.4g}; fields that differ anywhere: {fields or 'none'}")


# ---- phase: service ------------------------------------------------------------------------------------------
def start_server(model: Path, port: int, workdir: Path, *extra: str, src: Path | None = None
                 ) -> subprocess.Popen[bytes]:
    """`mamori serve` in a child process on 127.0.0.1:port (``extra``: more options; ``src``: code to run)."""
    import httpx

    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    proc = subprocess.Popen(
        [str(Path(PY).parent / "mamori"), "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--alerts", str(workdir / "service-alerts.jsonl"), *extra],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "serve.log", "wb"), env=env,  # noqa: SIM115
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("mamori serve did not come up; see serve.log")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_events(log: Path, n: int) -> list[dict[str, object]]:
    """The first ``n`` events of the log as API JSON (non-null canonical fields)."""
    from mamori.events import iter_event_batches

    out: list[dict[str, object]] = []
    for batch in iter_event_batches(log, "nginx", batch_lines=50_000):
        for row in batch.drop([c for c in batch.columns if c.startswith("labels.")]).iter_rows(named=True):
            ev = {k: v for k, v in row.items() if v is not None}
            ev["@timestamp"] = row["@timestamp"].isoformat()
            out.append(ev)
            if len(out) >= n:
                return out
    return out


def run_load(url: str, events: list[dict[str, object]], rate: float, duration: float
             ) -> tuple[np.ndarray, np.ndarray, int, float]:
    """:func:`open_loop` on a uvloop event loop with the collector off: the generator's own pauses stay small.

    The bodies and the event list are built before the clock starts and frozen out of the collector's view, so
    a full collection of the generator's heap cannot stall it mid-run (its stalls would count as server latency:
    latency is measured from the scheduled send).
    """
    import gc

    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        factory = None
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(open_loop(url, events, rate, duration))
    finally:
        gc.enable()
        gc.unfreeze()


async def open_loop(url: str, events: list[dict[str, object]], rate: float, duration: float, connections: int = 64
                    ) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Single-event POSTs at a fixed rate, open loop: request ``i`` is due at ``t0 + i / rate`` whatever the answers.

    A raw HTTP/1.1 keep-alive client on ``connections`` sockets (a Python HTTP library costs more CPU per request
    than the server on this shared machine); due requests queue for the next free connection, and latency is
    measured from the due time (no coordinated omission) and from the actual send. Returns the latencies from
    the due time and from the send (NaN for failed requests), the error count and the time to drain; the
    generator's own lateness (send - due) is ``lat_sched - lat_sent``.
    """
    host, port = url.removeprefix("http://").split(":")
    n = int(rate * duration)
    bodies = [json.dumps(events[i % len(events)]).encode() for i in range(n)]
    lat_sched = np.full(n, np.nan)
    lat_sent = np.full(n, np.nan)
    errors = 0
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    # time stamps from perf_counter: uvloop's loop.time() is libuv's cached millisecond clock
    clock = time.perf_counter
    t0 = clock() + 0.5

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            i = await queue.get()
            if i is None:
                writer.close()
                return
            body = bodies[i]
            sent = clock()
            writer.write(b"POST /v1/score HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done = clock()
            if head.startswith(b"HTTP/1.1 200"):
                lat_sched[i] = done - (t0 + i / rate)
                lat_sent[i] = done - sent
            else:
                errors += 1

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - clock()))
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return lat_sched, lat_sent, errors, clock() - t0


def compare_service(model: Path, work: Path, events: list[dict[str, object]], rate: float, duration: float,
                    baseline_src: Path, commit: str) -> None:
    """The same short open-loop run against the server before the change and after it, back to back."""
    figures = {}
    for tag, src in (("before", baseline_src), ("after", None)):
        port = free_port()
        server = start_server(model, port, work, src=src)
        try:
            url = f"http://127.0.0.1:{port}"
            run_load(url, events[-1000:], min(rate, 50.0), 3)
            before = load()
            cpu0 = process_cpu(server.pid)
            sched, sent, errors, elapsed = run_load(url, events, rate, duration)
            cpu = process_cpu(server.pid) - cpu0
            ok = sent[~np.isnan(sent)]
            due = sched[~np.isnan(sched)]
            figures[tag] = cpu / max(len(ok), 1) * 1e3
            code = f"commit {commit}" if src else "this code"
            print(f"  {tag:<6} ({code}): {len(ok):,} ok, {errors} errors, drained in {elapsed:.1f} s; latency from "
                  f"scheduled send p50 {np.percentile(due, 50) * 1e3:.1f} ms, p90 {np.percentile(due, 90) * 1e3:.1f} "
                  f"ms, p99 {np.percentile(due, 99) * 1e3:.1f} ms (from actual send p50 "
                  f"{np.percentile(ok, 50) * 1e3:.1f}, p99 {np.percentile(ok, 99) * 1e3:.1f} ms); server "
                  f"{figures[tag]:.2f} CPU-ms per request; load {before} / {load()}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"  after/before: {figures['before'] / figures['after']:.1f}x fewer server CPU-ms per single-event request")


def server_latency(url: str) -> dict[str, float]:
    """The service's own latency histogram (``mamori_score_latency_seconds``): cumulative count per bucket."""
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("mamori_score_latency_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = float(line.rsplit(" ", 1)[1])
    return out


def batch_requests(url: str, events: list[dict[str, object]], size: int, seconds: float) -> dict[str, float]:
    """Sequential batch-of-``size`` POSTs for about ``seconds``."""
    import httpx

    lat = []
    sent = 0
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as client:
        i = 0
        while time.perf_counter() - start < seconds:
            chunk = [events[(i + k) % len(events)] for k in range(size)]
            t = time.perf_counter()
            r = client.post("/v1/score", json={"events": chunk})
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"batch request failed: {r.status_code} {r.text[:200]}")
            sent += size
            i += size
    wall = time.perf_counter() - start
    return {"requests": len(lat), "events_per_s": sent / wall, "p50_ms": float(np.percentile(lat, 50) * 1e3),
            "p99_ms": float(np.percentile(lat, 99) * 1e3)}


def bad_input(url: str) -> list[tuple[str, int, str, int]]:
    """Each kind of bad request, its status and message, and the status of a good request right after."""
    import httpx

    good = {"@timestamp": "2025-04-21T01:00:00Z", "source.ip": "203.0.113.9", "url.path": "/api/v1/login",
            "http.request.method": "POST", "http.response.status_code": 401}
    cases = [
        ("wrong types", json.dumps({**good, "http.response.status_code": "four-oh-one", "source.port": "x"}).encode()),
        ("missing @timestamp", json.dumps({"source.ip": "1.2.3.4"}).encode()),
        ("10 MB body", b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}"),
        ("invalid UTF-8", b'{"@timestamp": "2025-04-21T01:00:00Z", "url.path": "\xff\xfe\xfd"}'),
        ("not JSON", b"{{{"),
    ]
    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, body in cases:
            r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
            after = client.post("/v1/score", json=good).status_code
            out.append((name, r.status_code, r.text[:110].replace("\n", " "), after))
    return out


def schemathesis_run(url: str, max_examples: int, workdir: Path) -> str:
    """`st run` against the live spec with the not_a_server_error check; return its summary lines."""
    cmd = [str(Path(PY).parent / "st"), "run", f"{url}/openapi.json", "--checks", "not_a_server_error",
           "--max-examples", str(max_examples), "--mode", "all", "--phases", "examples,fuzzing,coverage",
           "--report", "junit", "--report-dir", str(workdir / "schemathesis")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    tail = [line for line in proc.stdout.splitlines() if line.strip()][-12:]
    return f"exit {proc.returncode}; command: {' '.join(cmd)}\n    " + "\n    ".join(tail)


# ---- phase: CSIC ---------------------------------------------------------------------------------------------
def phase_csic(data_dir: Path, seed: int) -> dict[str, object] | None:
    """mamori's scoring throughput (features + classifier + alerts) on the CSIC 2010 test requests."""
    import polars as pl

    from mamori.bench.adapters import csic_events
    from mamori.detect import Scorer, ScoringConfig, train_scoring_model
    from mamori.features import FeatureConfig

    if not (data_dir / "csic_dataset.zip").exists():
        return None
    events, _notes = csic_events(data_dir, seed=0)
    # CSIC requests carry no time: one fixed timestamp, as mamori bench csic does
    events = events.with_columns(pl.datetime(2010, 1, 1, time_zone="UTC").alias("@timestamp"),
                                 pl.col("_y").alias("labels.is_attack"),
                                 pl.when(pl.col("_y")).then(pl.lit("csic")).otherwise(None).alias("labels.attack_family"))
    train = events.filter(~pl.col("_test"))
    test = events.filter(pl.col("_test"))
    model = train_scoring_model([train.drop("_file", "_index", "_key", "_y", "_test")],
                                feature_config=FeatureConfig(), epochs=5, seed=seed)
    scorer = Scorer(model, ScoringConfig(top_k=3))
    batch = test.drop("_file", "_index", "_key", "_y", "_test")
    t0 = time.perf_counter()
    result = scorer.score(batch)
    wall = time.perf_counter() - t0
    y = test.get_column("_y").to_numpy()
    from mamori.models import tpr_at_fpr

    return {"requests": batch.height, "wall_s": wall, "requests_per_s": batch.height / wall,
            "tpr_at_1pct_fpr": float(tpr_at_fpr(y, result.scores, 0.01)), "alerts": len(result.alerts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-state-events", type=int, default=100_000)
    parser.add_argument("--schemathesis-examples", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mamori-scoring-bench"))
    parser.add_argument("--csic-data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: batch,service,csic")
    parser.add_argument("--baseline", default=None,
                        help="a git commit: also run the batch phase and a short service run with its code, in the "
                             "same run, for before/after ratios")
    parser.add_argument("--compare-rate", type=float, default=100.0,
                        help="request rate of the short before/after service comparison")
    parser.add_argument("--compare-duration", type=float, default=15.0)
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="current", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    log, model = work / f"gateway-{args.lines}-seed{args.seed}.nginx.log", work / f"model-seed{args.seed}.npz"

    if args.phase == "batch":
        print(json.dumps(phase_batch(log, model, work / f"batch-alerts-{args.tag}.jsonl", args.max_state_events)))
        return

    skip = set(filter(None, args.skip.split(",")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    print("mamori scoring benchmark")
    print(f"versions: mamori {version('mamori')}, polars {version('polars')}, torch {version('torch')}, "
          f"fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, schemathesis {version('schemathesis')}, "
          f"python {platform.python_version()}; commit {commit}")
    print(f"hardware: {os.cpu_count()} CPUs, {platform.platform()}; seed {args.seed}")
    print(f"load average at start: {load()} (the machine is shared with other jobs)")

    t = time.perf_counter()
    if not log.exists():
        make_log(log, args.lines, args.seed)
    if not model.exists():
        make_model(model, args.seed)
    print(f"data: {log} ({args.lines:,} lines, {log.stat().st_size / 1e6:.0f} MB); model {model.name}; "
          f"prepared in {time.perf_counter() - t:.0f} s")

    baseline_src = baseline_tree(args.baseline, work) if args.baseline else None
    if "batch" not in skip:
        before = load()
        b = run_batch_child(args, work, "current", None)
        print(f"\n[batch] mamori score {log.name} --model {model.name} --format nginx "
              f"(window state budget {args.max_state_events:,} events, horizon 24h)")
        print(f"  events {b['events']:,}; wall {b['wall_s']:.1f} s; CPU {b['cpu_s']:.1f} s -> "
              f"{b['events_per_s']:,.0f} events/s end-to-end ({b['events'] / b['cpu_s']:,.0f} events per CPU-second)")
        print(f"  alerts {b['alerts']:,} (from {b['hits']:,} events over threshold); quarantined {b['quarantined']}")
        print(f"  peak memory (max RSS of the scoring process): {b['peak_rss_mb']:,.0f} MB; window state at end: "
              f"{b['state']['state_events']:,} events, {b['state']['state_bytes'] / 1e6:.1f} MB, "
              f"{b['state']['state_entities']:,} source IPs")
        print(f"  load average before/after: {before} / {load()}")
        if baseline_src is not None:
            # the code before the change, right after, same log and model: the fair before/after figure on a
            # machine whose load moves (the ratio of CPU seconds is the steadier of the two)
            before = load()
            o = run_batch_child(args, work, "baseline", baseline_src)
            print(f"  before (commit {args.baseline}, same log, run right after): wall {o['wall_s']:.1f} s, CPU "
                  f"{o['cpu_s']:.1f} s -> {o['events_per_s']:,.0f} events/s; peak RSS {o['peak_rss_mb']:,.0f} MB; "
                  f"load {before} / {load()}")
            print(f"  after/before: {b['events_per_s'] / o['events_per_s']:.2f}x events/s (wall), "
                  f"{o['cpu_s'] / b['cpu_s']:.2f}x fewer CPU seconds")
            same = compare_alerts(work / "batch-alerts-baseline.jsonl", work / "batch-alerts-current.jsonl")
            print(f"  alerts: {same}")

    if "service" not in skip:
        port = free_port()
        server = start_server(model, port, work)
        url = f"http://127.0.0.1:{port}"
        try:
            events = api_events(log, int(args.rate * args.duration) + 2000)
            # warm-up (first requests pay for lazy imports and allocations)
            run_load(url, events[-2000:], 100, 5)
            before = load()
            hist0 = server_latency(url)
            cpu0, gen0 = process_cpu(server.pid), time.process_time()
            sched, sent, errors, elapsed = run_load(url, events, args.rate, args.duration)
            server_cpu, gen_cpu = process_cpu(server.pid) - cpu0, time.process_time() - gen0
            hist = {le: v - hist0.get(le, 0.0) for le, v in server_latency(url).items()}
            ok = sched[~np.isnan(sched)]
            ok_sent = sent[~np.isnan(sent)]
            late = (sched - sent)[~np.isnan(sched)]
            print(f"\n[service] mamori serve on 127.0.0.1; open-loop load {args.rate:.0f} req/s single-event "
                  f"POST /v1/score for {args.duration:.0f} s "
                  "(raw HTTP/1.1 generator on uvloop, 64 keep-alive connections, same machine)")
            print(f"  requests {len(sched):,}, ok {len(ok):,}, errors {errors}; all answered after {elapsed:.1f} s "
                  f"(offered {len(sched) / args.duration:.0f} req/s, achieved {len(ok) / elapsed:.0f} req/s)")
            print(f"  latency from scheduled send: p50 {np.percentile(ok, 50) * 1e3:.1f} ms, p90 "
                  f"{np.percentile(ok, 90) * 1e3:.1f} ms, p99 {np.percentile(ok, 99) * 1e3:.1f} ms, max "
                  f"{ok.max() * 1e3:.0f} ms")
            print(f"  latency from actual send:    p50 {np.percentile(ok_sent, 50) * 1e3:.1f} ms, p99 "
                  f"{np.percentile(ok_sent, 99) * 1e3:.1f} ms")
            print(f"  generator: sent late by p50 {np.percentile(late, 50) * 1e3:.2f} ms, p99 "
                  f"{np.percentile(late, 99) * 1e3:.2f} ms (counted in the latency from the scheduled send); "
                  f"{gen_cpu / max(len(sched), 1) * 1e3:.2f} CPU-ms per request")
            total = max(hist.get("+Inf", 0.0), 1.0)
            print(f"  inside the server (request read -> response sent, its own histogram): "
                  f"{hist.get('0.001', 0) / total:.1%} within 1 ms, {hist.get('0.005', 0) / total:.1%} within 5 ms, "
                  f"{hist.get('0.01', 0) / total:.2%} within 10 ms, {hist.get('0.05', 0) / total:.2%} within 50 ms")
            per_request_ms = server_cpu / max(len(ok), 1) * 1e3
            print(f"  server CPU: {server_cpu:.1f} s for {len(ok):,} requests = {per_request_ms:.2f} "
                  f"CPU-ms per request (=> {max(len(ok), 1) / server_cpu:,.0f} req/s per fully available core)")
            print(f"  load average before/after: {before} / {load()}")
            before = load()
            cpu0 = process_cpu(server.pid)
            br = batch_requests(url, events, 1000, 20.0)
            print(f"  batch of 1,000 events per POST: {br['requests']} requests, {br['events_per_s']:,.0f} events/s; "
                  f"per request p50 {br['p50_ms']:.0f} ms, p99 {br['p99_ms']:.0f} ms; server "
                  f"{(process_cpu(server.pid) - cpu0) / (br['requests'] * 1000) * 1e6:.0f} CPU-us per event "
                  f"(load {before} / {load()})")
            if baseline_src is not None:
                print(f"\n[service before/after] single-event POST /v1/score, {args.compare_rate:.0f} req/s for "
                      f"{args.compare_duration:.0f} s against each server in turn")
                compare_service(model, work, events, args.compare_rate, args.compare_duration, baseline_src,
                                args.baseline)
            print("\n[bad input] status, message, and a good request's status right after")
            for name, status, text, after in bad_input(url):
                print(f"  {name:<18} -> {status} {text!r}; next good request -> {after}")
            print(f"\n[schemathesis] {schemathesis_run(url, args.schemathesis_examples, work)}")
            import httpx

            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            scored = [line for line in metrics.splitlines() if line.startswith("mamori_events_scored_total")]
            print(f"  after all that: /healthz {httpx.get(f'{url}/healthz', timeout=10).status_code}; {scored[0]}")
        finally:
            server.terminate()
            server.wait(timeout=30)

    if "csic" not in skip:
        before = load()
        c = phase_csic(args.csic_data_dir, args.seed)
        if c is None:
            print(f"\n[csic] skipped: {args.csic_data_dir}/csic_dataset.zip not found")
        else:
            print(f"\n[csic] mamori on the CSIC 2010 test split (deduplicated, seed 0; model trained on the train "
                  f"split): {c['requests']:,} requests in {c['wall_s']:.1f} s -> {c['requests_per_s']:,.0f} "
                  f"requests/s (features + classifier + explained alerts, one process); TPR at 1% FPR "
                  f"{c['tpr_at_1pct_fpr']:.3f}; load {before} / {load()}")
            crs = ROOT / "benchmarks" / "crs_csic.sh"
            print(f"  ModSecurity CRS on the same requests: run {crs.relative_to(ROOT)} (replays them through nginx)")
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
