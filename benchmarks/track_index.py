"""URI -> track id: a Python dict per Store (segue before) vs segue's shared sorted-hash index.

    .venv/bin/python benchmarks/track_index.py --tracks 2000000 --queries 200000

Baseline: what every ``Store`` built before: the track URIs as Python strings (``to_pylist``) and a
``{uri: id}`` dict, then a lookup with ``dict.get`` per URI. segue: :class:`segue.data.store.TrackIndex`
(64-bit hashes of the Arrow array, sorted once; a vectorised ``searchsorted`` and a string compare). URIs
are MPD-like (``spotify:track:`` + 22 base-62 characters); queries are half known, half unknown. Memory is
what tracemalloc sees allocated by each way above the Arrow array both start from (Python objects and numpy
buffers); the index is built once per vocabulary in a process, the dict once per Store.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pyarrow as pa

from segue.data.store import TrackIndex

ALPHABET = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


def make_uris(n: int, seed: int) -> pa.Array:
    rng = np.random.default_rng(seed)
    body = ALPHABET[rng.integers(0, len(ALPHABET), size=(n, 22))]
    text = np.concatenate([np.broadcast_to(np.frombuffer(b"spotify:track:", np.uint8), (n, 14)), body], axis=1)
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def measure(build, lookup) -> tuple[float, float, float, np.ndarray]:
    """Times from a plain run; memory from a second run under tracemalloc (which slows allocation)."""
    t0 = time.perf_counter()
    built = build()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids = lookup(built)
    lookup_s = time.perf_counter() - t0
    del built
    tracemalloc.start()
    built = build()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return build_s, lookup_s, held / 2**20, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=2_000_000)
    parser.add_argument("--queries", type=int, default=200_000)
    args = parser.parse_args()
    uris = make_uris(args.tracks, seed=0)
    rng = np.random.default_rng(1)
    known = uris.take(pa.array(rng.integers(0, args.tracks, args.queries // 2)))
    queries = pa.concat_arrays([known, make_uris(args.queries - len(known), seed=2)])
    query_list = queries.to_pylist()

    def dict_build():
        return {uri: i for i, uri in enumerate(uris.to_pylist())}

    def dict_lookup(index):
        return np.fromiter((index.get(u, -1) for u in query_list), dtype=np.int32, count=len(query_list))

    rows = {"dict per Store (before)": measure(dict_build, dict_lookup),
            "sorted hashes (segue)": measure(lambda: TrackIndex(uris), lambda index: index.ids(query_list))}
    base, ours = rows.values()
    assert np.array_equal(base[3], ours[3]), "the two ways disagree"
    print(f"{args.tracks:,} tracks, {args.queries:,} queries (half unknown)")
    print(f"{'way':<26} {'build s':>8} {'lookup s':>9} {'held MiB':>9}")
    for name, (build_s, lookup_s, mib, _) in rows.items():
        print(f"{name:<26} {build_s:>8.2f} {lookup_s:>9.3f} {mib:>9.0f}")
    print(f"ratio (before / segue): build {base[0] / ours[0]:.1f}x, lookup {base[1] / ours[1]:.1f}x, "
          f"memory {base[2] / ours[2]:.1f}x")


if __name__ == "__main__":
    main()
