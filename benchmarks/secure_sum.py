"""Cost of the cross-bank secure sum: pairwise masks only vs the full protocol with dropout recovery.

Run: ``.venv/bin/python benchmarks/secure_sum.py [--members 5 --cells 1605632 --rounds 3 --seed 1]`` (1,605,632 cells
is one member's vector with the default ``AnalyticsConfig``). Prints seconds per round (median), their ratio, one
round with a member dropping after sharing its secrets (exactness of the survivors' sum), versions and load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import mamori
from mamori.analytics import MaskingMember, SecureSumCoordinator, secure_sum


def members(n: int, channels: bool) -> list[MaskingMember]:
    """Members with agreed keys (channel keys too when ``channels``: needed for dropout recovery)."""
    ms = [MaskingMember(i) for i in range(n)]
    pubs = {m.index: m.public_key() for m in ms}
    chans = {m.index: m.channel_key() for m in ms} if channels else None
    for m in ms:
        m.agree(pubs, chans)
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--cells", type=int, default=1_605_632)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"mamori {mamori.__version__}  python {platform.python_version()}  numpy {np.__version__}  "
          f"{platform.platform()}  cpus {os.cpu_count()}  seed {args.seed}  load average {load}")
    rng = np.random.default_rng(args.seed)
    vecs = [rng.integers(0, 2, args.cells) for _ in range(args.members)]
    expected = np.sum(vecs, axis=0)
    plain, full = members(args.members, False), members(args.members, True)
    t_plain, t_full = [], []
    for r in range(args.rounds):  # interleaved, so both see the same machine load
        t = time.perf_counter()
        total = SecureSumCoordinator().total({m.index: m.mask(v, r) for m, v in zip(plain, vecs, strict=True)})
        t_plain.append(time.perf_counter() - t)
        assert np.array_equal(total, expected)
        t = time.perf_counter()
        total = secure_sum(vecs, round_id=r, members=full)
        t_full.append(time.perf_counter() - t)
        assert np.array_equal(total, expected)
    p, f = float(np.median(t_plain)), float(np.median(t_full))
    print(f"{args.members} members x {args.cells} cells: pairwise masks only {p:.2f} s/round, full protocol with "
          f"dropout recovery {f:.2f} s/round (median of {args.rounds}; ratio {f / p:.2f})")
    t = time.perf_counter()
    total = secure_sum(vecs, round_id=args.rounds, members=full, drop_before_masking={1})
    secs = time.perf_counter() - t
    exact = np.array_equal(total, expected - vecs[1])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"member 1 drops after sharing its secrets: sum over the {args.members - 1} survivors "
          f"{'EXACT' if exact else 'WRONG'} ({secs:.2f} s); load average {load}")


if __name__ == "__main__":
    main()
