"""The title model's vocabulary: normalised distinct titles of every playlist name, old way vs segue's.

    .venv/bin/python benchmarks/title_vocab.py --names 1000000 --distinct 400000

Baseline (the title model before): ``normalize_title`` on every name, then ``np.unique`` of a fixed-width
numpy unicode array of all of them (4 bytes x the longest title x every playlist). segue:
:func:`segue.models.title.distinct_titles` (Arrow dictionary encoding, ``normalize_title`` once per
distinct raw name). Names are drawn Zipf-like from ``--distinct`` raw names of MPD-like lengths, with one
long name (the MPD's longest titles run to ~200 characters). Each way runs in its own child process: its
time and its peak memory above the names it was given (VmHWM after a reset, Linux).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

WORDS = ("country", "Rap", "chill", "workout", "Christmas", "rock!!", "worship", "disney", "summer", "2017",
         "vibes", "my", "songs", "best", "throwback", "🔥", "road trip", "party", "sad", "90's")


def make_names(n: int, distinct: int, seed: int = 0) -> pa.Array:
    rng = np.random.default_rng(seed)
    raw = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 5)))) + (f" {i % 1000}" if i % 3 == 0 else "")
           for i in range(distinct)]
    raw[-1] = "a very long playlist title " * 7
    ranks = np.minimum(rng.zipf(1.1, size=n), distinct) - 1  # a long tail of rare names
    return pa.array(raw).take(pa.array(ranks))


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_one(way: str, n: int, distinct: int) -> dict:
    from segue.data.mpd import normalize_title
    from segue.models.title import distinct_titles

    names = make_names(n, distinct)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_bytes("VmRSS")
    started = time.perf_counter()
    if way == "baseline":
        normalised = [normalize_title(name) for name in names.to_pylist()]
        titles, index = np.unique(np.asarray(normalised, dtype=object).astype(str), return_inverse=True)
        titles = titles.tolist()
    else:
        titles, index = distinct_titles(names)
    seconds = time.perf_counter() - started
    return {"way": way, "seconds": seconds, "peak_mb": (_status_bytes("VmHWM") - before) / 2**20,
            "titles": len(titles), "checksum": int(np.asarray(index, dtype=np.int64).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=400_000)
    parser.add_argument("--child", choices=("baseline", "segue"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.names, args.distinct)))
        return
    rows = []
    for way in ("baseline", "segue"):
        out = subprocess.run([sys.executable, __file__, "--child", way, "--names", str(args.names),
                              "--distinct", str(args.distinct)], check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base, ours = rows
    if (base["titles"], base["checksum"]) != (ours["titles"], ours["checksum"]):
        raise SystemExit(f"the two ways disagree: {base} vs {ours}")
    print(f"{args.names:,} names ({len(make_names(args.names, args.distinct).unique()):,} distinct), "
          f"{base['titles']:,} distinct normalised titles (both ways agree)")
    print(f"{'way':<10}{'seconds':>10}{'peak MiB':>10}")
    for row in rows:
        print(f"{row['way']:<10}{row['seconds']:>10.2f}{row['peak_mb']:>10.0f}")
    print(f"segue / baseline: time {ours['seconds'] / base['seconds']:.4f}x "
          f"({base['seconds'] / ours['seconds']:.0f}x faster), peak memory "
          f"{ours['peak_mb'] / max(base['peak_mb'], 1e-9):.4f}x")


if __name__ == "__main__":
    main()
