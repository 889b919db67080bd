"""Serving speed: `segue serve` on loopback for cooccur and als, on a generated catalogue of >= 200,000 tracks.

    .venv/bin/python benchmarks/serve.py [--dir /tmp/segue-bench-serve] [--playlists 100000]
        [--tracks-approx 300000] [--profile realistic] [--models cooccur als] [--requests 300] [--seconds 30]
        [--clients 8 32]

1. Data, cached in --dir (delete it to change the data options): ``segue synth`` + ``segue ingest``, then
   ``segue train MODEL`` for each model.
2. Search: the index's build time and size, then per-query time in-process for search-as-you-type prefixes
   ("b", "be", "bea", ... of real names), the FTS5 index against a linear scan (one vectorised regex pass over
   the folded names, the baseline), same queries, with the ratio; then both again at the full MPD's
   2,262,292 tracks (this catalogue's names repeated to that size).
3. Per model: ``segue serve`` in a subprocess on 127.0.0.1; one client: p50/p95/p99 of POST /v1/recommend
   (k=500), of the page's request (k=20 with "why" hints) and of GET /v1/tracks/search; then C concurrent clients
   for --seconds (and at most --max-per-client requests each): requests/s, p50/p99, errors, and the server's
   resident memory at the start, end and peak. 32 clients also run against ``--max-batch 1`` (no batching),
   the baseline for the batcher.
4. Extrapolation to 2,262,292 tracks (and, with ``--large-model DIR``, a model trained on a larger store, e.g.
   the 1M-playlist run's als, measured in-process at its own catalogue's size against the same playlists with
   every song scored; ``--large-only`` runs just that): the per-request work that grows with the catalogue (the dense score
   row, row scaling, the top-500 selection, and for als the factor product, on a 2.26M x factors float32
   array) timed in-process at both sizes; for a model with sparse candidates (cooccur) the share of
   playlists they answer and their cost, which does not grow with the catalogue. The rest of a request
   (HTTP, seeds, JSON for 500 tracks) does not grow with the catalogue either.

The client runs on the same machine as the server (and shares its cores): figures are an upper bound on
latency. Exits non-zero if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS: one thread, as segue serve

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from segue.data.store import Store  # noqa: E402
from segue.models.base import load_model, open_model_and_store, top_k  # noqa: E402
from segue.serve.search import SearchIndex, build_index, popularity_order, write_index  # noqa: E402

FULL_MPD_TRACKS = 2_262_292
SEGUE = [sys.executable, "-m", "segue"]


def run(*args: str) -> None:
    print("$ segue", " ".join(args), flush=True)
    subprocess.run([*SEGUE, *args], check=True)


def prepare(workdir: Path, playlists: int, tracks_approx: int, profile: str, models: list[str]) -> Path:
    store = workdir / "store"
    if not (store / "manifest.json").is_file():
        run("synth", "--playlists", str(playlists), "--tracks-approx", str(tracks_approx), "--profile", profile,
            "--seed", "3", "--out", str(workdir / "raw"), "--no-progress")
        run("ingest", str(workdir / "raw"), "--out", str(store))
    for model in models:
        if not (workdir / "models" / model / "config.json").is_file():
            run("train", model, "--store", str(store), "--out", str(workdir / "models" / model), "--no-progress")
    return store


def percentiles(ms: list[float]) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f} ms"


# ---- search: index vs linear scan ---------------------------------------------------------------------
def fold_query(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


class LinearScan:
    """The baseline: every query scans all names (folded once, up front) with one vectorised regex per word."""

    def __init__(self, names: pa.Table) -> None:
        text = pc.binary_join_element_wise(*(pc.fill_null(names.column(i), "") for i in range(3)), " ")
        text = pc.utf8_normalize(pc.utf8_normalize(text, "NFKC"), "NFKD")
        self.text = pc.utf8_lower(pc.replace_substring_regex(text, r"\p{Mn}", ""))  # rows in popularity order

    def search(self, query: str, limit: int) -> np.ndarray:
        mask = None
        for word in re.findall(r"[^\W_]+", fold_query(query)):
            hit = pc.match_substring_regex(self.text, r"(^|[^\pL\pN])" + re.escape(word))
            mask = hit if mask is None else pc.and_(mask, hit)
        if mask is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(mask.to_numpy(zero_copy_only=False))[:limit]  # popularity ranks


def typed_queries(store: Store, n_tracks: int, rng) -> list[str]:
    """What a person types while looking for a track: growing prefixes of '<artist> <track name>'."""
    queries = []
    for info in store.track_info(rng.choice(store.n_tracks, n_tracks, replace=False)):
        words = f"{(info['artist_name'] or '').split(' ')[0]} {info['track_name'] or ''}".split()[:3]
        typed = ""
        for word in words:
            for end in (1, 2, 3, len(word)):
                queries.append((typed + " " + word[:end]).strip())
            typed = (typed + " " + word).strip()
    return list(dict.fromkeys(q for q in queries if q))


def time_queries(search, queries: list[str], limit: int = 10) -> tuple[list[float], list]:
    out, times = [], []
    for query in queries:
        started = time.perf_counter()
        out.append(search(query, limit))
        times.append((time.perf_counter() - started) * 1e3)
    return times, out


def search_benchmark(store: Store, workdir: Path, full_tracks: int, rng) -> list[str]:
    lines = []
    order = popularity_order(store.track_count)
    names = store.tracks.select(["track_name", "artist_name", "album_name"]).take(pa.array(order))
    queries = typed_queries(store, 60, rng)
    sizes = [(store.n_tracks, names, order)]
    big = pa.concat_tables([names] * (full_tracks // names.num_rows + 1)).slice(0, full_tracks)
    sizes.append((full_tracks, big, np.arange(full_tracks, dtype=np.int32)))
    for n, table, ids in sizes:
        path = workdir / f"search-{n}.sqlite"
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        if n == store.n_tracks:
            build_index(store, path)
        else:
            write_index(path, table, ids, "benchmark")
        built = time.perf_counter() - started
        index = SearchIndex(path, ids)
        scan = LinearScan(table)
        index_ms, index_hits = time_queries(lambda q, k: index.search(q, k), queries)
        sample = queries[:: max(1, len(queries) // 40)]
        scan_ms, scan_hits = time_queries(scan.search, sample)
        same = sum(np.array_equal(np.sort(ids[s]), np.sort(index_hits[queries.index(q)]))
                   for q, s in zip(sample, scan_hits))
        lines.append(f"search, {n:,} tracks: index built in {built:.1f} s, {path.stat().st_size / 2**20:.0f} MB; "
                     f"{len(queries)} typed queries")
        lines.append(f"  FTS5 index   {percentiles(index_ms)}   mean {np.mean(index_ms):7.2f} ms")
        lines.append(f"  linear scan  {percentiles(scan_ms)}   mean {np.mean(scan_ms):7.2f} ms  ({len(sample)} of "
                     f"the queries; same tracks as the index for {same}/{len(sample)})")
        lines.append(f"  ratio (scan / index, mean): {np.mean(scan_ms) / np.mean(index_ms):.0f}x")
        print("\n".join(lines[-4:]), flush=True)
        path.unlink()
    return lines


# ---- the server ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_dir: Path, max_batch: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = ["--max-batch", str(max_batch)] if max_batch else []
        self.process = subprocess.Popen([*SEGUE, "serve", str(model_dir), "--port", str(self.port),
                                         "--log-level", "warning", *extra])
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"segue serve {model_dir} did not start")
            time.sleep(0.2)
        self.ps = psutil.Process(self.process.pid)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def recommend_bodies(store: Store, rng, count: int, k: int, explain: bool = False) -> list[bytes]:
    """Playlists of the store cut to 1..100 seeds (titles kept), as request bodies."""
    bodies = []
    for row in rng.choice(store.n_playlists, count, replace=False):
        seeds = store.playlist_tracks(int(row))[: int(rng.choice([1, 5, 10, 25, 100]))]
        bodies.append(json.dumps({"tracks": [store.track_uris[i] for i in seeds], "title": store.names[row],
                                  "k": k, "explain": explain}).encode())
    return bodies


def single_client(server: Server, bodies: list[bytes], queries: list[str]) -> tuple[dict, dict]:
    """Latencies (ms) per request kind, and the server's CPU time per request (ms): the latency an idle core
    would give, whatever else the machine is doing."""
    timings: dict[str, list[float]] = {}
    server_cpu_ms: dict[str, float] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for name, send in (
            ("recommend k=500", lambda i: client.post("/v1/recommend", content=bodies[i % len(bodies)],
                                                      headers={"content-type": "application/json"})),
            ("page: k=20 + why", lambda i: client.post("/v1/recommend", content=bodies[-1 - i % len(bodies)]
                                                       .replace(b'"k": 500, "explain": false',
                                                                b'"k": 20, "explain": true'),
                                                       headers={"content-type": "application/json"})),
            ("search limit=10", lambda i: client.get("/v1/tracks/search",
                                                     params={"q": queries[i % len(queries)], "limit": 10})),
        ):
            for i in range(20):  # warm up
                send(i).raise_for_status()
            times = []
            cpu = server.cpu_seconds()
            for i in range(len(bodies)):
                started = time.perf_counter()
                response = send(i)
                times.append((time.perf_counter() - started) * 1e3)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
            timings[name] = times
            server_cpu_ms[name] = (server.cpu_seconds() - cpu) / len(bodies) * 1e3
    return timings, server_cpu_ms


async def load(server: Server, bodies: list[bytes], clients: int, seconds: float, max_per_client: int) -> dict:
    latencies: list[float] = []
    errors = 0
    memory = [server.rss()]
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        for i in range(max_per_client):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                response = await client.post("/v1/recommend", content=bodies[(offset + i * clients) % len(bodies)],
                                             headers={"content-type": "application/json"})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1e3)
            errors += not ok

    async def sample_memory() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            memory.append(server.rss())

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        sampler = asyncio.create_task(sample_memory())
        await asyncio.gather(*(client_loop(client, c) for c in range(clients)))
        await sampler
    elapsed = time.monotonic() - started
    memory.append(server.rss())
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed, "latencies": latencies,
            "rss_start": memory[0], "rss_end": memory[-1], "rss_peak": max(memory), "seconds": elapsed}


# ---- extrapolation ---------------------------------------------------------------------------------
def dense_row_ms(n: int, factors: np.ndarray | None, rng, reps: int = 15) -> float:
    """Per playlist, the work whose cost grows with the catalogue: a dense score row (from factors, or scattered
    similarity sums), scaled, popularity added, unseen tracks masked, top-500 taken."""
    pop = rng.random(n, dtype=np.float32)
    unseen = np.zeros(n, dtype=bool)
    query = rng.random((1, factors.shape[1]), dtype=np.float32) if factors is not None else None
    times = []
    for _ in range(reps):
        started = time.process_time()  # CPU time (single-threaded numpy): what an idle core would take
        if factors is not None:
            row = query @ factors.T  # (1, n)
        else:
            row = np.zeros((1, n), dtype=np.float32)
            row[0, rng.integers(0, n, 4000)] = 1.0  # ~20 seeds x 200 neighbours
        row /= max(float(row.max()), 1e-9)
        row += 0.001 * pop
        row[:, unseen] = -np.inf
        top_k(row, 500)
        times.append((time.process_time() - started) * 1e3)
    return float(np.median(times))


def extrapolate(model_name: str, model, n_tracks: int, full_tracks: int, rng) -> tuple[float, float]:
    """(ms per playlist at this catalogue, at the full MPD's) for the catalogue-sized work."""
    if model_name == "als":
        f = model.item_factors.shape[1]
        here = dense_row_ms(n_tracks, np.ascontiguousarray(model.item_factors, dtype=np.float32), rng)
        full = dense_row_ms(full_tracks, rng.random((full_tracks, f), dtype=np.float32), rng)
    else:
        here = dense_row_ms(n_tracks, None, rng)
        full = dense_row_ms(full_tracks, None, rng)
    return here, full


def request_playlists(store: Store, rng, count: int) -> list:
    """``count`` (seeds, title) of training playlists cut to 1, 5, 10, 25 or 100 seeds, as the requests are."""
    rows = rng.choice(store.n_playlists, count, replace=False)
    return [(store.playlist_tracks(int(r))[: int(rng.choice([1, 5, 10, 25, 100]))], store.names[r]) for r in rows]


def timed_counting_dense(model, playlists: list, k: int) -> tuple[np.ndarray, float]:
    """CPU ms per playlist of ``model.recommend``, one at a time, and the share of playlists that needed a dense
    score row (counted through ``_score_with_fallback``, where every dense row is made)."""
    dense_rows = []
    original = type(model)._score_with_fallback
    type(model)._score_with_fallback = lambda self, indptr, *rest: (dense_rows.append(len(indptr) - 1)
                                                                    or original(self, indptr, *rest))
    try:
        times = model_cpu_ms(model.recommend, playlists, k)
    finally:
        type(model)._score_with_fallback = original
    return times, sum(dense_rows) / len(playlists)


def candidate_path(model, store: Store, rng, count: int = 200, k: int = 500) -> tuple[float, float, float] | None:
    """For a model with a sparse candidate path (cooccur: the seeds' neighbours, the title's tracks and the
    k + seeds most popular tracks, whose number does not grow with the catalogue) or a pruned one (als: the
    songs with the longest factors, a share of the catalogue): the share of playlists (cut as in the
    requests) it answers, and the model's median and p99 CPU ms per playlist; None for dense-only models."""
    times, dense = timed_counting_dense(model, request_playlists(store, rng, count), k)
    if dense == 1:
        return None
    return 1 - dense, float(np.median(times)), float(np.percentile(times, 99))


def large_model(model_dir: Path, rng, count: int = 200, k: int = 500) -> str:
    """A model trained on a larger store, in-process, one playlist (cut as in the requests) at a time: the share
    the sparse or pruned path answers and its CPU ms per playlist, against the same playlists with pruning off
    (every song scored: the baseline), after one warm-up call that builds what the paths keep."""
    model, store = open_model_and_store(model_dir)
    playlists = request_playlists(store, rng, count)
    model.recommend([playlists[0][0]], k=k, titles=[playlists[0][1]])  # warm-up: song order, search tables
    fast, dense = timed_counting_dense(model, playlists, k)
    line = (f"\n{model.name} at {store.n_tracks:,} tracks ({model_dir}), in-process, one playlist at a time, "
            f"{count} playlists: {1 - dense:.0%} answered without a dense row; "
            f"{percentiles(list(fast))} CPU per playlist")
    if hasattr(model, "_norm_order"):
        model._norm = (None,)  # pruning off: every song scored
        slow = model_cpu_ms(model.recommend, playlists, k)
        line += f"; with every song scored {percentiles(list(slow))} ({np.median(fast) / np.median(slow):.2f}x)"
    return line


def model_cpu_ms(recommend, playlists: list, k: int = 500) -> np.ndarray:
    """CPU ms per playlist of ``recommend``, one playlist at a time (in-process, no HTTP)."""
    times = []
    for seeds, title in playlists:
        started = time.process_time()
        recommend([seeds], k=k, titles=[title])
        times.append((time.process_time() - started) * 1e3)
    return np.array(times)


def ann_benchmark(model, store: Store, n_tracks: int, workdir: Path, rng, count: int = 100, k: int = 500) -> list[str]:
    """The als approximate index against the exact product, per playlist (CPU ms, in-process) and recall@k, on
    ``n_tracks`` songs: this model's factors, or (larger) tracks drawn from them with noise (clustered as
    real factors are). Titles are left out at the larger size (the title model knows only this catalogue)."""
    import copy

    big = copy.copy(model)
    y = model.item_factors
    if n_tracks != model.n_tracks:
        spread = y.std(axis=0) * 0.3
        big.item_factors = np.ascontiguousarray(y[rng.integers(0, len(y), n_tracks)]
                                                + rng.normal(0, 1, (n_tracks, y.shape[1])).astype(np.float32) * spread)
        big.item_playlists = np.ones(n_tracks, np.float32)
        big.n_tracks, big.fallback, big.model_id = n_tracks, None, f"benchmark-{n_tracks}"
        big._prepare()
    playlists = request_playlists(store, rng, count)
    if big.fallback is None:
        playlists = [(seeds, None) for seeds, _ in playlists]
    where = workdir / f"ann-{n_tracks}"
    where.mkdir(exist_ok=True)
    started = time.perf_counter()
    approximate = big.approximate_recommender(where)
    built = time.perf_counter() - started
    exact_ms = model_cpu_ms(big.recommend, playlists, k)
    ann_ms = model_cpu_ms(approximate, playlists, k)
    recall = []
    for seeds, title in playlists:
        exact, _ = big.recommend([seeds], k=k, titles=[title])
        found, _ = approximate([seeds], k=k, titles=[title])
        recall.append(len(np.intersect1d(exact[exact >= 0], found[found >= 0])) / max(1, (exact >= 0).sum()))
    size = sum(f.stat().st_size for f in where.iterdir())
    lines = [f"als approximate index, {n_tracks:,} tracks x {y.shape[1]} factors "
             f"({'this model' if n_tracks == model.n_tracks else 'drawn from this model with noise'}): built in "
             f"{built:.0f} s (1 thread; reused if already there), {size / 2**20:.0f} MB; {count} playlists, k={k}",
             f"  exact       {percentiles(exact_ms)} CPU",
             f"  HNSW index  {percentiles(ann_ms)} CPU; recall@{k} of the exact ranking: mean {np.mean(recall):.3f}, "
             f"min {np.min(recall):.3f}",
             f"  ratio (exact / index, p50): {np.median(exact_ms) / np.median(ann_ms):.1f}x"]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "segue-bench-serve")
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--tracks-approx", type=int, default=300_000)
    parser.add_argument("--profile", default="realistic", help="segue synth --profile (realistic or dense)")
    parser.add_argument("--models", nargs="+", default=["cooccur", "als"])
    parser.add_argument("--requests", type=int, default=300, help="single-client requests per endpoint")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each concurrent run")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--max-per-client", type=int, default=20_000)
    parser.add_argument("--full-tracks", type=int, default=FULL_MPD_TRACKS,
                        help="catalogue size to extrapolate to (the full MPD's by default)")
    parser.add_argument("--large-model", type=Path, nargs="*", default=[],
                        help="trained model directories on larger stores (e.g. the 1M run of full_scale.py): "
                             "their model CPU per playlist, measured at their catalogue's size")
    parser.add_argument("--large-only", action="store_true", help="only the --large-model figures")
    parser.add_argument("--ann-only", action="store_true",
                        help="only the in-process als figures: model CPU per playlist, the approximate index")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(prepare(args.dir, args.playlists, args.tracks_approx, args.profile, args.models))
    if store.n_tracks < 200_000:
        print(f"note: only {store.n_tracks:,} tracks; raise --playlists/--tracks-approx for >= 200,000")
    rng = np.random.default_rng(0)
    print(f"store: {store.n_playlists:,} playlists, {store.n_tracks:,} tracks; {os.cpu_count()} cores shared "
          f"with the client and anything else running (load average {os.getloadavg()[0]:.1f})", flush=True)
    if args.ann_only:
        model = load_model(args.dir / "models" / "als")
        lines = [f"load average {os.getloadavg()[0]:.1f}"]
        for n in (store.n_tracks, args.full_tracks):
            lines += ann_benchmark(model, store, n, args.dir, rng)
        print("\n=== als in-process ===\n" + "\n".join(lines))
        return
    if args.large_only:
        print("\n".join(large_model(model_dir, rng) for model_dir in args.large_model))
        return
    report = search_benchmark(store, args.dir, args.full_tracks, rng)
    queries = typed_queries(store, 60, rng)
    bodies = recommend_bodies(store, rng, args.requests, k=500)
    failed = 0
    for model_name in args.models:
        model_dir = args.dir / "models" / model_name
        server = Server(model_dir)
        try:
            report.append(f"\n{model_name}: single client, {len(bodies)} requests each (server RSS "
                          f"{server.rss() / 2**20:.0f} MB)")
            single, server_cpu = single_client(server, bodies, queries)
            for name, times in single.items():
                report.append(f"  {name:18s} {percentiles(times)}   server CPU {server_cpu[name]:5.2f} ms/request")
            for clients in args.clients:
                asyncio.run(load(server, bodies, clients, 5.0, args.max_per_client))  # warm-up, not counted
                result = asyncio.run(load(server, bodies, clients, args.seconds, args.max_per_client))
                failed += result["errors"]
                report.append(
                    f"  {clients:2d} clients x {result['seconds']:.0f} s: {result['rps']:6.1f} req/s, "
                    f"{result['requests']:,} requests, {result['errors']} errors, "
                    f"{percentiles(result['latencies'])}; RSS {result['rss_start'] / 2**20:.0f} -> "
                    f"{result['rss_end'] / 2**20:.0f} MB (peak {result['rss_peak'] / 2**20:.0f})")
            print("\n".join(report[-(2 + 3 + len(args.clients)):]), flush=True)
        finally:
            server.stop()
        baseline = Server(model_dir, max_batch=1)
        try:
            clients = max(args.clients)
            asyncio.run(load(baseline, bodies, clients, 5.0, args.max_per_client))  # warm-up, not counted
            unbatched = asyncio.run(load(baseline, bodies, clients, args.seconds, args.max_per_client))
            failed += unbatched["errors"]
            batched_rps = result["rps"]
            report.append(f"  {clients:2d} clients, --max-batch 1 (baseline): {unbatched['rps']:6.1f} req/s, "
                          f"{unbatched['errors']} errors, {percentiles(unbatched['latencies'])}; batching gives "
                          f"{batched_rps / unbatched['rps']:.2f}x the throughput")
            print(report[-1], flush=True)
        finally:
            baseline.stop()
        model = load_model(model_dir)
        here, full = extrapolate(model_name, model, store.n_tracks, args.full_tracks, rng)
        sparse = candidate_path(model, store, rng)
        pruned = hasattr(model, "_norm_order")
        del model
        cpu = server_cpu["recommend k=500"]
        report.append(f"  dense row per playlist (CPU): {here:.2f} ms at {store.n_tracks:,} tracks, "
                      f"{full:.2f} ms at {args.full_tracks:,} ({full / here:.1f}x)")
        if sparse is None:
            report.append(f"  so recommend k=500 at the larger catalogue ~ {cpu + full - here:.1f} ms of server "
                          f"CPU (now {cpu:.1f}); a batch of 16 needs a {16 * args.full_tracks * 4 / 2**20:.0f} MB "
                          "score block")
        elif pruned:
            share, model_ms, model_p99 = sparse
            report.append(f"  the pruned path answers {share:.0%} of playlists (model: p50 {model_ms:.2f}, p99 "
                          f"{model_p99:.2f} ms CPU per playlist; it scores a share of the catalogue, so it grows "
                          "with it: see --large-model for a measured figure), the rest take the dense row")
        else:
            share, model_ms, _ = sparse
            report.append(f"  sparse candidates answer {share:.0%} of playlists (model: p50 {model_ms:.2f} ms CPU "
                          f"per playlist, not growing with the catalogue); the other {1 - share:.0%} take the dense "
                          f"row: so recommend k=500 at the larger catalogue ~ {cpu + (1 - share) * (full - here):.1f}"
                          f" ms of server CPU on average (now {cpu:.1f})")
        print("\n".join(report[-2:]), flush=True)
    for model_dir in args.large_model:
        report.append(large_model(model_dir, rng))
        print(report[-1], flush=True)
    print(f"\n=== serve benchmark ({store.n_tracks:,} tracks, {os.cpu_count()} cores shared with the client; load "
          f"average now {os.getloadavg()[0]:.1f}) ===")
    print("\n".join(report))
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
