"""Replay mamori's CSIC 2010 test requests through nginx + ModSecurity + OWASP CRS; compare with mamori.

Called by benchmarks/crs_csic.sh (which installs and starts nginx). Two jobs:

``export``: write the raw test requests of mamori's deduplicated CSIC split (``mamori.bench.csic_events``, the
same seed) to a JSON-lines file, each with its label and a replay id.

``score``: read the ModSecurity log lines written by the replay (``mamori-score <id> <anomaly score>``) and
report, per paranoia level, CRS's ROC-AUC, TPR at 1% FPR, TPR/FPR at the blocking threshold (score >= 5) and
the replay throughput; then mamori's figures on the same requests (from ``mamori bench csic``'s results JSON)
and mamori's own scoring throughput (feature extraction + classifier + autoencoder on those requests).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

_REQUEST = re.compile(rb"^([A-Z]+) (\S+) HTTP/(\d+\.\d+)\r?$")


def _raw_requests(stream: bytes) -> list[dict]:
    """Split one CSIC file into requests: request line, header lines, blank line, optional body line(s)."""
    lines = stream.split(b"\n")
    out: list[dict] = []
    i = 0
    n = len(lines)
    while i < n:
        m = _REQUEST.match(lines[i].rstrip(b"\r"))
        if not m:
            i += 1
            continue
        headers = []
        i += 1
        while i < n and lines[i].strip():
            name, _, value = lines[i].rstrip(b"\r").partition(b":")
            headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
            i += 1
        body = b""
        # A body follows the blank line when the request declared one; it runs until the next blank line.
        if any(h[0].lower() == "content-length" for h in headers):
            i += 1
            body_lines = []
            while i < n and lines[i].strip() and not _REQUEST.match(lines[i].rstrip(b"\r")):
                body_lines.append(lines[i].rstrip(b"\r"))
                i += 1
            body = b"\n".join(body_lines)
        out.append(
            {
                "method": m.group(1).decode(),
                "target": m.group(2).decode("latin-1"),
                "headers": headers,
                "body": body.decode("latin-1"),
            }
        )
    return out


def export(args: argparse.Namespace) -> None:
    from mamori.bench import csic_events

    events, notes = csic_events(Path(args.data_dir), seed=args.split_seed)
    test = events.filter(events["_test"])
    raw: dict[str, list[dict]] = {}
    with zipfile.ZipFile(Path(args.data_dir) / "csic_dataset.zip") as archive:
        for name in archive.namelist():
            if not name.endswith(".gz"):
                continue
            stem = Path(name).name.split(".")[0]
            raw[stem] = _raw_requests(gzip.decompress(archive.read(name)))
    for stem, reqs in raw.items():
        expected = events.filter(events["_file"] == stem)
        if expected.height and len(reqs) < int(expected["_index"].max()) + 1:
            sys.exit(f"raw parse of {stem} found {len(reqs)} requests, fewer than the reader's; aborting")
    n = 0
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in test.iter_rows(named=True):
            req = raw[row["_file"]][row["_index"]]
            path = re.sub(r"^https?://[^/]+", "", req["target"])
            if not path.startswith(row["url.path"] or "/"):
                sys.exit(f"request {row['_file']}#{row['_index']} does not line up: {path[:80]} vs {row['url.path']}")
            fh.write(
                json.dumps(
                    {
                        "id": n,
                        "label": int(row["_y"]),
                        "method": req["method"],
                        "path": path,
                        "headers": req["headers"],
                        "body": req["body"],
                    }
                )
                + "\n"
            )
            n += 1
    print(
        f"exported {n} test requests ({int(test['_y'].sum())} anomalous) of the deduplicated split "
        f"(seed {args.split_seed}; {notes['removed_duplicates']} duplicates and {notes['removed_label_conflicts']} "
        "label conflicts removed before splitting)"
    )


def replay(args: argparse.Namespace) -> None:
    """Send every exported request to nginx (keep-alive, ``--threads`` connections); print requests/s."""
    import http.client
    import threading

    reqs = [json.loads(line) for line in open(args.requests, encoding="utf-8")]
    chunks = [reqs[i :: args.threads] for i in range(args.threads)]
    errors: list[str] = []

    def worker(chunk: list[dict]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        for r in chunk:
            body = r["body"].encode("latin-1")
            try:
                conn.putrequest(r["method"], r["path"], skip_host=True, skip_accept_encoding=True)
                for name, value in r["headers"]:
                    if name.lower() in ("content-length", "connection"):
                        continue
                    conn.putheader(name, value)
                conn.putheader("X-Mamori-Id", str(r["id"]))
                conn.putheader("Connection", "keep-alive")
                if body or r["method"] in ("POST", "PUT"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{r['id']}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "requests": len(reqs),
                "seconds": seconds,
                "requests_per_s": len(reqs) / seconds,
                "errors": len(errors),
                "first_errors": errors[:3],
            }
        )
    )


def _tpr_at_fpr(y: np.ndarray, s: np.ndarray, fpr: float = 0.01) -> tuple[float, float]:
    """Best TPR whose FPR is <= fpr, over the thresholds 'score >= t' (CRS scores are coarse integers)."""
    best, at = 0.0, float("inf")
    for t in np.unique(s)[::-1]:
        flagged = s >= t
        f = flagged[y == 0].mean()
        if f <= fpr:
            tpr = flagged[y == 1].mean()
            if tpr > best:
                best, at = float(tpr), float(t)
    return best, at


def score(args: argparse.Namespace) -> None:
    from sklearn.metrics import roc_auc_score

    reqs = [json.loads(line) for line in open(args.requests, encoding="utf-8")]
    y = np.array([r["label"] for r in reqs])
    rows = []
    for level in args.levels.split(","):
        log = Path(args.work) / f"error-pl{level}.log"
        scores = np.zeros(len(reqs))
        seen = np.zeros(len(reqs), dtype=bool)
        pat = re.compile(r"mamori-score (\d+) (\d*)")
        for line in open(log, encoding="utf-8", errors="replace"):
            m = pat.search(line)
            if m:
                i = int(m.group(1))
                scores[i] = float(m.group(2) or 0)
                seen[i] = True
        speed = json.loads((Path(args.work) / f"replay-pl{level}.json").read_text())
        tpr, thr = _tpr_at_fpr(y, scores)
        block = scores >= 5
        rows.append(
            {
                "paranoia_level": int(level),
                "logged": int(seen.sum()),
                "roc_auc": float(roc_auc_score(y, scores)),
                "tpr_at_1pct_fpr": tpr,
                "threshold_at_1pct_fpr": thr,
                "tpr_block5": float(block[y == 1].mean()),
                "fpr_block5": float(block[y == 0].mean()),
                "requests_per_s": speed["requests_per_s"],
                "replay_errors": speed["errors"],
            }
        )
    print(f"\nModSecurity + OWASP CRS on {len(reqs)} CSIC test requests ({int(y.sum())} anomalous), 127.0.0.1")
    header = ("PL", "logged", "ROC-AUC", "TPR@1%FPR", "(score>=)", "TPR@5", "FPR@5", "req/s")
    widths = (3, 7, 8, 10, 9, 7, 7, 7)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print(
            f"{r['paranoia_level']:>3} {r['logged']:>7} {r['roc_auc']:>8.3f} {r['tpr_at_1pct_fpr']:>10.3f} "
            f"{r['threshold_at_1pct_fpr']:>9.0f} {r['tpr_block5']:>7.3f} {r['fpr_block5']:>7.3f} "
            f"{r['requests_per_s']:>7.0f}"
        )
    best = max(rows, key=lambda r: r["tpr_at_1pct_fpr"])
    out = {"crs": rows, "crs_best": best}
    if args.mamori and Path(args.mamori).exists():
        res = json.loads(Path(args.mamori).read_text())["runs"][0]["results"]
        print("\nmamori on the same test requests (mamori bench csic, seed 0):")
        for key in (
            "classifier/federated",
            "autoencoder/federated",
            "hybrid/federated",
            "classifier/centralized",
            "hist_gradient_boosting/centralized",
        ):
            if key in res:
                print(f"  {key:38s} ROC-AUC {res[key]['roc_auc']:.3f}  TPR@1%FPR {res[key]['tpr_at_1pct_fpr']:.3f}")
        out["mamori"] = {k: res[k] for k in res}
    speed = _mamori_speed(args)
    out["mamori_requests_per_s"] = speed
    print(f"\nmamori scoring throughput (features + classifier + autoencoder, 1 thread): {speed:,.0f} requests/s")
    print(f"CRS best: PL{best['paranoia_level']} TPR@1%FPR {best['tpr_at_1pct_fpr']:.3f}")
    import sklearn

    print(
        f"versions: python {sys.version.split()[0]}, numpy {np.__version__}, scikit-learn {sklearn.__version__}; "
        f"cpus {os.cpu_count()}; {platform.platform()}"
    )
    Path(args.work, "crs_results.json").write_text(json.dumps(out, indent=2))


def _mamori_speed(args: argparse.Namespace) -> float:
    """Requests/s of mamori's scoring path on the same requests: parse nothing, extract features, score two nets."""
    import polars as pl
    import torch

    from mamori.bench import csic_events, csic_features
    from mamori.features import Standardizer
    from mamori.models import AttackClassifier, AutoencoderDetector

    torch.set_num_threads(1)
    events, _ = csic_events(Path(args.data_dir), seed=args.split_seed)
    test = events.filter(pl.col("_test"))
    X0 = csic_features(test.head(200))
    clf = AttackClassifier(seed=0).init_weights(X0.shape[1])
    ae = AutoencoderDetector(seed=0).init_weights(X0.shape[1])
    scaler = Standardizer().fit(X0)
    started = time.perf_counter()
    X = scaler.transform(csic_features(test))
    clf.decision_function(X)
    ae.decision_function(X)
    return test.height / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("replay")
    p.add_argument("--requests", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=4)
    p = sub.add_parser("score")
    p.add_argument("--requests", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--levels", default="1,2,3,4")
    p.add_argument("--mamori", default="")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()
    {"export": export, "replay": replay, "score": score}[args.cmd](args)


if __name__ == "__main__":
    main()
