"""Cross-bank campaign analytics vs per-bank CrowdSec and fail2ban on the same simulated nginx logs.

Run: ``.venv/bin/python benchmarks/cross_bank.py [--banks 5 --days 4 --scale 0.03 --seed 1] [--no-crowdsec]``.
CrowdSec and fail2ban must be installed (Debian packages ``crowdsec``, ``fail2ban``). On a machine without internet
access CrowdSec's post-install script fails (it registers with the Central API); run as root, this script then
finishes the set-up itself (offline Central API file, ``dpkg --configure crowdsec``; see docs/cross-bank.md). A tool
that is missing is reported as such, not silently skipped.

Prints: the share of the low-and-slow campaign's IPs that mamori flags (ever, and within 1 hour of simulated time
after the IP has been seen failing at k banks), the share of legitimate customers' IPs flagged, the same figures for
fail2ban (5 failures / 10 min and 5 / 60 min per IP per bank) and CrowdSec (stock scenarios, plus a copy of the
upstream ``http-generic-401-bf`` scenario), and per-family recall for the burst attacks; then the closed loop (the
next period's detector trained without and with the campaign-indicator feature, on the same rows) and one secure-sum
round at the engine's vector size with a bank dropping out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

import mamori
from mamori.analytics import (
    AnalyticsConfig,
    ClosedLoopReport,
    ConsortiumKey,
    campaign_objects,
    evaluate_closed_loop,
    indicator_hits,
    run_analytics,
    secure_sum,
)
from mamori.detect import IndicatorIndex
from mamori.intel import serialize
from mamori.simulate import SimulationConfig, simulate_consortium, write_consortium

FAMILIES = ("credential_stuffing_low_slow", "credential_stuffing", "password_spraying")
F2B_FILTER = """[Definition]
failregex = ^<HOST> - \\S+ \\[[^\\]]+\\] "(?:GET|POST|PUT) [^"]*" (?:401|403)\\s
datepattern = {^LN-BEG}%%d/%%b/%%Y:%%H:%%M:%%S %%z
"""
CS_SCENARIO = """# copy of the hub's crowdsecurity/http-generic-401-bf (absent from Debian's offline hub)
type: leaky
format: 2.0
name: mamori/http-401-bf
description: "401 brute force per IP (copy of upstream http-generic-401-bf)"
filter: "evt.Meta.log_type == 'http_access-log' && evt.Meta.http_status == '401' && evt.Parsed.verb == 'POST'"
groupby: evt.Meta.source_ip
capacity: 5
leakspeed: "10s"
blackhole: 1m
labels:
  service: http
  type: bruteforce
  remediation: true
"""
_MSEC = re.compile(r"msec=(\d+\.\d+)")


def ground_truth(events: pl.DataFrame) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Attack IPs per family, legitimate-only IPs, legitimate-only IPs with a failed login."""
    fam = {f: set(events.filter(pl.col("labels.attack_family") == f)["source.ip"].unique()) for f in FAMILIES}
    attack = set(events.filter(pl.col("labels.attack_family") != "benign")["source.ip"].unique())
    benign = events.filter(pl.col("labels.attack_family") == "benign")
    legit = set(benign["source.ip"].unique()) - attack
    legit_failing = set(benign.filter((pl.col("event.action") == "login") & (pl.col("event.outcome") == "failure"))[
        "source.ip"].unique()) - attack
    return fam, legit, legit_failing


def kth_bank_time(events: pl.DataFrame, ips: set[str], k: int) -> dict[str, dt.datetime]:
    """When each IP was first seen failing a login at its k-th distinct bank (the earliest any k-bank rule can fire)."""
    first = (events.filter(pl.col("source.ip").is_in(list(ips)) & (pl.col("event.action") == "login")
                           & (pl.col("event.outcome") == "failure"))
             .group_by("source.ip", "organization.id").agg(pl.col("@timestamp").min().alias("t"))
             .sort("t").group_by("source.ip").agg(pl.col("t").alias("ts")))
    out = {}
    for ip, ts in first.iter_rows():
        if len(ts) >= k:
            out[ip] = ts[k - 1]
    return out


def fail2ban(logs: dict[str, Path], windows_s: tuple[int, ...], maxretry: int = 5) -> dict[int, set[str]]:
    """fail2ban's own regex engine (fail2ban-regex) finds the failures; its jail rule (maxretry within findtime,
    per IP, per bank) is applied to the matched timestamps."""
    if not shutil.which("fail2ban-regex"):
        raise RuntimeError("fail2ban-regex not found: apt-get install fail2ban")
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as fh:
        fh.write(F2B_FILTER)
    banned: dict[int, set[str]] = {w: set() for w in windows_s}
    for log in logs.values():
        out = subprocess.run(["fail2ban-regex", "-o", "msg", str(log), fh.name], capture_output=True, text=True,
                             check=True).stdout
        times: dict[str, list[float]] = defaultdict(list)
        for line in out.splitlines():
            m = _MSEC.search(line)
            if m:
                times[line.split(" ", 1)[0]].append(float(m.group(1)))
        for ip, ts in times.items():
            arr = np.sort(np.array(ts))
            for w in windows_s:
                if arr.size >= maxretry and np.any(arr[maxretry - 1:] - arr[:-(maxretry - 1)] <= w):
                    banned[w].add(ip)
    os.unlink(fh.name)
    return banned


_AUTH_LINE = re.compile(r'"POST [^"]*login[^"]*" |" 4\d\d ')


def auth_lines(log: Path, out: Path) -> int:
    """Keep the lines CrowdSec's brute-force and probing scenarios act on: login POSTs and 4xx responses."""
    n = 0
    with log.open() as src, out.open("w") as dst:
        for line in src:
            if _AUTH_LINE.search(line):
                dst.write(line)
                n += 1
    return n


_DATA_REF = re.compile(r"source_url:\s*(\S+)\s*\n\s*dest_file:\s*(\S+)")
CS_DATA = Path("/var/lib/crowdsec/data")


def _missing_data_files() -> dict[str, str]:
    """Data files the enabled scenarios/parsers name (dest_file) that are absent: dest -> basename of the source."""
    out = {}
    for item in Path("/etc/crowdsec").glob("*/**/*.yaml"):
        try:
            text = item.read_text()
        except OSError:
            continue
        for url, dest in _DATA_REF.findall(text):
            if not (CS_DATA / dest).exists():
                out[dest] = url.rsplit("/", 1)[-1]
    return out


def _link_missing_data_files() -> None:
    """Debian's offline hub ships some data files under their upstream name only.

    E.g. ``http-path-traversal-probing`` reads ``http_path_traversal.txt`` while the package ships the same list
    (same source URL) as ``path_traversal.txt``; without it CrowdSec logs an error with its whole data library for
    every event, which slows the replay several-fold and disables that scenario.
    """
    for dest, source in _missing_data_files().items():
        for folder in (CS_DATA, Path("/usr/share/crowdsec/data")):
            if (folder / source).exists():
                shutil.copyfile(folder / source, CS_DATA / dest)
                print(f"crowdsec: {CS_DATA / dest} <- {folder / source} (same upstream list, Debian's name)")
                break
        else:
            print(f"crowdsec: data file {dest} is missing and not shipped; the scenarios using it stay disabled")


def ensure_crowdsec() -> str:
    """Finish a CrowdSec install whose post-install script failed offline; return its dpkg state before.

    Debian's postinst registers with CrowdSec's Central API, which needs the internet, and leaves the package
    half-configured (dpkg state ``iF``) when that fails. A non-empty online-API credentials file tells the postinst
    not to register (README.Debian); ``hub_branch`` stops ``cscli`` asking the internet for the latest version.
    """
    if not shutil.which("crowdsec") or not shutil.which("dpkg-query"):
        raise RuntimeError("crowdsec not found: apt-get install crowdsec")
    state = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "crowdsec"], capture_output=True,
                           text=True).stdout.strip()
    capi = Path("/etc/crowdsec/online_api_credentials.yaml")
    cfg = Path("/etc/crowdsec/config.yaml")
    text = cfg.read_text()
    offline_ready = capi.exists() and capi.stat().st_size > 0 and "hub_branch:" in text
    if state.startswith("ii") and offline_ready and not _missing_data_files():
        return state
    if os.geteuid() != 0:
        raise RuntimeError(f"crowdsec is not set up for offline use (dpkg state {state!r}); run this script as root "
                           "once so it can finish the set-up, or follow docs/cross-bank.md")
    if not capi.exists() or capi.stat().st_size == 0:
        capi.write_text("# offline: no Central API registration (written by mamori benchmarks/cross_bank.py)\n")
        print(f"crowdsec: wrote {capi} (offline: no Central API)")
    if "hub_branch:" not in text and "\ncscli:\n" in text:
        cfg.write_text(text.replace("\ncscli:\n", "\ncscli:\n  hub_branch: master\n", 1))
        print(f"crowdsec: set cscli.hub_branch in {cfg}")
    _link_missing_data_files()
    if state.startswith("ii"):
        return state
    done = subprocess.run(["dpkg", "--configure", "crowdsec"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dpkg --configure crowdsec failed: {(done.stdout + done.stderr)[-400:]}")
    print(f"crowdsec: finished its offline set-up (dpkg state was {state!r})")
    return state


def crowdsec(logs: dict[str, Path], timeout_s: float = 1200) -> dict[str, set[str]]:
    """Replay each bank's log through CrowdSec (fresh local database per bank); scenario -> alerted IPs."""
    ensure_crowdsec()
    with socket.socket() as probe:  # the replay starts CrowdSec's local API on 127.0.0.1:8080 (config.yaml)
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            raise RuntimeError("127.0.0.1:8080 is in use (a running crowdsec service?); stop it before replaying")
    Path("/etc/crowdsec/scenarios/mamori-http-401-bf.yaml").write_text(CS_SCENARIO)
    db = Path("/var/lib/crowdsec/data/crowdsec.db")
    alerts: dict[str, set[str]] = defaultdict(set)
    for bank, log in logs.items():
        for p in db.parent.glob("crowdsec.db*"):
            p.unlink()
        subprocess.run(["cscli", "machines", "add", "-a", "--force"], capture_output=True, check=True)
        fd, name = tempfile.mkstemp(suffix=".log")
        os.close(fd)
        out = Path(name)
        with out.open("w") as fh:
            proc = subprocess.Popen(["crowdsec", "-c", "/etc/crowdsec/config.yaml", "-dsn", f"file://{log}",
                                     "-type", "nginx"], stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                if "Bucket routine exiting" in out.read_text(errors="replace"):
                    time.sleep(5)  # let the last alerts reach the local API
                    break
                time.sleep(1)
            else:
                if proc.poll() is None:
                    print(f"  crowdsec on {bank}: no end of replay within {timeout_s:.0f} s", file=sys.stderr)
        finally:  # never leave a crowdsec process behind, also when interrupted
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:  # crowdsec 1.4 often ignores SIGTERM after a replay
                    proc.kill()
                    proc.wait(15)
        with sqlite3.connect(db) as conn:
            for scenario, ip in conn.execute("select scenario, source_ip from alerts"):
                alerts[scenario].add(ip)
        out.unlink()
    return alerts


def share(a: set[str], b: set[str]) -> str:
    return f"{len(a & b):6d}/{len(b):<6d} = {100 * len(a & b) / max(1, len(b)):6.2f}%"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_loop(label: str, rep: ClosedLoopReport, family: str) -> None:
    print(f"  {label}")
    for name, fig in (("without the campaign feature", rep.without),
                      ("with the campaign feature   ", rep.with_feature)):
        print(f"    {name}: {family} events {100 * fig.recall.get(family, 0.0):5.1f}%  of them matching a shared "
              f"indicator {100 * fig.campaign_hit_recall:5.1f}%  campaign IPs {100 * fig.campaign_ips:5.1f}%  |  "
              f"benign events {100 * fig.benign_fpr:5.2f}%  legit-only IPs {100 * fig.legit_ips:5.2f}%  "
              f"burst {100 * fig.recall.get('credential_stuffing', 0.0):5.1f}%  "
              f"spraying {100 * fig.recall.get('password_spraying', 0.0):5.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--banks", type=int, default=5)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--scale", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-banks", type=int, default=3)
    ap.add_argument("--horizon-hours", type=float, default=72.0)
    ap.add_argument("--no-crowdsec", action="store_true")
    ap.add_argument("--no-fail2ban", action="store_true")
    ap.add_argument("--crowdsec-full-logs", action="store_true",
                    help="feed CrowdSec every line (slow: ~100 lines/s here) instead of login POSTs and 4xx lines")
    ap.add_argument("--dp-epsilon", type=float, nargs="*", default=[])
    args = ap.parse_args()
    print(f"mamori {mamori.__version__}  python {platform.python_version()}  polars {pl.__version__}  "
          f"numpy {np.__version__}  {platform.platform()}  cpus {os.cpu_count()}  {load()}")
    sim = SimulationConfig(banks=args.banks, days=args.days, scale=args.scale, seed=args.seed)
    t = time.perf_counter()
    cons = simulate_consortium(sim)
    events = cons.all_events()
    print(f"simulated {args.banks} banks x {args.days} days, scale {args.scale}, seed {args.seed}: "
          f"{events.height} events in {time.perf_counter() - t:.1f} s")
    fam, legit, legit_failing = ground_truth(events)
    camp = fam["credential_stuffing_low_slow"]
    k = args.min_banks
    tk = kth_bank_time(events, camp, k)
    print(f"low-and-slow campaign: {len(camp)} IPs, {len(tk)} of them fail at >= {k} banks; legitimate-only IPs "
          f"{len(legit)} ({len(legit_failing)} with a failed login)")

    config = AnalyticsConfig(min_banks=k, horizon_hours=args.horizon_hours, seed=args.seed)
    key = ConsortiumKey(np.random.default_rng(args.seed).bytes(32))
    t = time.perf_counter()
    res = run_analytics(cons.events, key, config)
    secs = time.perf_counter() - t
    flagged = res.flagged("ip")
    fl = set(flagged)
    hour = dt.timedelta(hours=1)
    within = {ip for ip, t_k in tk.items() if ip in flagged and flagged[ip] - t_k <= hour}
    lat = sorted((flagged[ip] - t_k).total_seconds() / 60 for ip, t_k in tk.items() if ip in flagged)
    print(f"\nmamori cross-bank analytics: {len(res.rounds)} windows of {config.window_minutes} min, "
          f"{res.rounds[0].vector_cells} cells per member vector, {secs:.1f} s ({secs / len(res.rounds):.2f} s/window; "
          f"secure sum with dropout recovery; {load()})")
    print(f"  campaign IPs flagged (ever)                          {share(fl, camp)}")
    print(f"  campaign IPs flagged within 1 h of k-th bank sighting {share(within, camp)}   "
          f"(of IPs at >= k banks: {share(within, set(tk))})")
    if lat:
        print(f"  latency after k-th bank sighting: median {np.median(lat):.0f} min, max {max(lat):.0f} min")
    print(f"  legitimate-only IPs flagged                          {share(fl, legit)}")
    print(f"  legitimate IPs with a failed login flagged           {share(fl, legit_failing)}")
    kinds = defaultdict(int)
    for f in res.findings.values():
        kinds[f.kind] += 1
    print(f"  findings by kind: {dict(kinds)}")
    for f in (f for f in res.findings.values() if f.kind in ("ja3", "user_agent", "asn", "net24")):
        print(f"    {f.kind:10s} {f.value[:70]:70s} banks={f.banks} failures={f.failures} "
              f"flagged {f.flagged_at:%m-%d %H:%M}")
    mule = (events.filter((pl.col("event.action") == "payee_add") & (pl.col("labels.attack_family") != "benign")
                          & pl.col("banking.payee.id").is_not_null())
            .group_by("banking.payee.id").agg(pl.col("organization.id").n_unique().alias("banks")))
    mule_k = set(mule.filter(pl.col("banks") >= k)["banking.payee.id"])
    benign_payees = set(events.filter((pl.col("event.action") == "payee_add")
                                      & (pl.col("labels.attack_family") == "benign"))["banking.payee.id"].drop_nulls())
    fp_payees = set(res.flagged("payee")) - set(mule["banking.payee.id"])
    print(f"  mule payees added at >= k banks flagged               {share(set(res.flagged('payee')), mule_k)}   "
          f"benign payees flagged {len(fp_payees & benign_payees)}/{len(benign_payees)}")
    objs = campaign_objects(res.findings.values(), name="low-and-slow stuffing", members=args.banks, config=config,
                            key=key)
    print(f"  STIX objects for the campaign: {len(objs)}")
    hits = indicator_hits(events, res.findings.values())
    ls = events.filter(pl.col("labels.attack_family") == "credential_stuffing_low_slow")
    ls_hits = hits.filter(pl.col("labels.attack_family") == "credential_stuffing_low_slow")
    ben_hits = hits.filter(pl.col("labels.attack_family") == "benign")
    print(f"  campaign indicators as a feature: {ls_hits['campaign.indicator_hit'].sum()}/{ls.height} low-and-slow "
          f"events arrive after their IP was shared ({100 * ls_hits['campaign.indicator_hit'].mean():.1f}%); benign "
          f"events hit: {ben_hits['campaign.indicator_hit'].sum()}/{ben_hits.height}")
    for name in ("credential_stuffing", "password_spraying"):
        print(f"  {name:27s} IPs flagged (ever)         {share(fl, fam[name])}")
    for eps in args.dp_epsilon:
        r = run_analytics(cons.events, key, config.model_copy(update={"dp_epsilon": eps, "reproducible_noise": True}))
        f2 = set(r.flagged("ip"))
        print(f"  with DP epsilon={eps}/window: campaign {share(f2, camp)}  legit {share(f2, legit)}")
    live = IndicatorIndex.from_objects(serialize(o) for o in objs).campaign_hits(events)
    same = np.array_equal(live, hits["campaign.indicator_hit"].to_numpy().astype(np.float32))
    print(f"  live scorer hook (IndicatorIndex.campaign_hits on the serialized STIX): {int(live.sum())} hits, "
          f"{'identical to' if same else 'DIFFERENT FROM'} the training column")

    t0, t1 = events["@timestamp"].min(), events["@timestamp"].max()
    split = t0 + (t1 - t0) / 2
    print(f"\nclosing the loop: attack classifier trained on events before {split:%m-%d %H:%M} (threshold calibrated "
          f"at 0.5% benign FPR on held-out training rows), scoring the events after; {load()}")
    t = time.perf_counter()
    seen = evaluate_closed_loop(cons.events, res.findings.values(), split=split, seed=args.seed)
    print(f"  {seen.train_rows} training rows, {seen.test_rows} scored rows; {seen.campaign_test_hits} of the "
          f"{seen.campaign_test_rows} low-and-slow events scored carry the feature ({time.perf_counter() - t:.0f} s)")
    print_loop("campaign family in the training labels:", seen, "credential_stuffing_low_slow")
    unseen = evaluate_closed_loop(cons.events, res.findings.values(), split=split, seed=args.seed,
                                  unseen_families=("credential_stuffing_low_slow",))
    print_loop("campaign family absent from the training labels (a new campaign):", unseen,
               "credential_stuffing_low_slow")
    union = events.with_columns(pl.Series("hit", hits["campaign.indicator_hit"]))
    after = union.filter((pl.col("@timestamp") >= split) & (pl.col("labels.attack_family")
                                                              == "credential_stuffing_low_slow"))
    print(f"  the indicator match alone as a rule (no model): {100 * after['hit'].mean():.1f}% of the low-and-slow "
          f"events after the split; benign events hit {ben_hits['campaign.indicator_hit'].sum()}")

    cells = res.rounds[0].vector_cells
    rng = np.random.default_rng(args.seed)
    vecs = [rng.integers(0, 2, cells) for _ in range(args.banks)]
    t = time.perf_counter()
    total = secure_sum(vecs, round_id=1, drop_before_masking={1})
    secs_drop = time.perf_counter() - t
    exact = np.array_equal(total, np.sum([v for i, v in enumerate(vecs) if i != 1], axis=0))
    print(f"\nsecure sum with dropout recovery: {args.banks} members x {cells} cells, member 1 drops after sharing "
          f"its secrets, before sending: sum over the {args.banks - 1} survivors {'EXACT' if exact else 'WRONG'} "
          f"({secs_drop:.2f} s incl. key agreement; {load()})")

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_consortium(cons, tmp, fmt="nginx")
        logs = {b: p["gateway"] for b, p in paths.items()}
        lines = sum(sum(1 for _ in open(p)) for p in logs.values())
        print(f"\nnginx logs: {lines} lines over {len(logs)} banks (each tool runs per bank; an IP counts as flagged "
              "if flagged at any bank)")
        if not args.no_fail2ban:
            try:
                t = time.perf_counter()
                f2b = fail2ban(logs, (600, 3600))
                f2b_version = subprocess.run(["fail2ban-regex", "--version"], capture_output=True, text=True).stdout
                print(f"fail2ban {f2b_version.strip()}"
                      f" ({time.perf_counter() - t:.1f} s; {load()})")
                for w, ips in f2b.items():
                    print(f"  maxretry 5 findtime {w // 60:3d} min: low-and-slow {share(ips, camp)}  "
                          f"burst {share(ips, fam['credential_stuffing'])}  "
                          f"spraying {share(ips, fam['password_spraying'])}"
                          f"  legit {share(ips, legit)}")
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"fail2ban: NOT RUN ({exc})")
        if not args.no_crowdsec:
            try:
                t = time.perf_counter()
                cs_logs = logs
                if not args.crowdsec_full_logs:
                    cs_logs = {b: Path(tmp) / f"{b}.auth.log" for b in logs}
                    kept = sum(auth_lines(logs[b], cs_logs[b]) for b in logs)
                    print(f"crowdsec input: {kept} login-POST or 4xx lines of {lines} (--crowdsec-full-logs for all)")
                cs = crowdsec(cs_logs)
                ver = subprocess.run(["crowdsec", "-version"], capture_output=True, text=True)
                print(f"crowdsec {(ver.stdout + ver.stderr).splitlines()[0] if ver.stdout + ver.stderr else '?'}"
                      f" ({time.perf_counter() - t:.1f} s; {load()})")
                stock = set().union(*[ips for s, ips in cs.items() if not s.startswith("mamori/")]) if cs else set()
                tuned = stock | cs.get("mamori/http-401-bf", set())
                for label, ips in (("stock scenarios", stock), ("+ 401-bf copy", tuned)):
                    print(f"  {label:16s}: low-and-slow {share(ips, camp)}  "
                          f"burst {share(ips, fam['credential_stuffing'])}"
                          f"  spraying {share(ips, fam['password_spraying'])}  legit {share(ips, legit)}")
                for s, ips in sorted(cs.items()):
                    print(f"    {s}: {len(ips)} IPs")
            except (RuntimeError, subprocess.CalledProcessError, OSError, sqlite3.Error) as exc:
                print(f"crowdsec: NOT RUN ({exc})")


if __name__ == "__main__":
    main()
