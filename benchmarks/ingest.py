"""Ingest benchmark: segue ingest vs the naive json+pandas way vs the bare orjson parse floor.

    .venv/bin/python benchmarks/ingest.py [--slices 50] [--small 10] [--workers 2] [--data-dir DIR]

Writes ``--slices`` synthetic slices of 1,000 playlists (``segue.data.synth``, a 1M-track catalogue so a
slice holds ~40k distinct tracks as a real MPD slice does; pretty-printed like the MPD files, ~31 MB
each) once, then runs each method in its own subprocess, so wall time and peak memory are per method:

(a) ``segue.data.ingest.ingest`` with ``--workers`` processes, at ``--slices`` and at ``--small`` slices
    (peak memory must not grow with the number of slices);
(b) naive, the seed's way: ``json.load`` each file, one dict row per playlist-track into a pandas
    DataFrame, then a for loop numbers the songs (and artists, albums) and the rows get their ids, written
    to Parquet; (b') the same with vectorised ids (``pd.factorize``), a stronger baseline than the seed.
    Both run on the same slices as (a) unless ``--naive-slices`` says fewer (they hold every row in memory,
    ~80 MB per slice);
(c) floor: read the bytes and ``orjson.loads`` them, nothing else, on one core; (c') the same with
    msgspec's typed decoding (the cheapest way we know to Python objects); (c'') the same with Arrow's JSON
    reader into columns, the decoding step of segue's workers.

Peak memory is the largest sum of RSS over the method's process tree (main process plus its workers),
sampled every 20 ms with psutil; ``max proc`` is the largest single process (getrusage). All methods run in
the same invocation, one after the other, so a busy shared machine affects them alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec

MPD = {"playlists": 1_000_000, "entries": 66_346_428, "tracks": 2_262_292, "slices": 1000}


# ---- data ------------------------------------------------------------------------------------------------

_CATALOG = None


def _write_block(args: tuple[Path, int, int]) -> Path:
    from segue.data.synth import generate_playlists, slice_name

    out_dir, block, seed = args
    start = block * 1000
    playlists = list(generate_playlists(1000, seed=seed, start_pid=start, catalog=_CATALOG))
    doc = {"info": {"generated_on": "2017-12-03 08:41:42.057563", "slice": f"{start}-{start + 999}",
                    "version": "v1"}, "playlists": playlists}
    path = out_dir / slice_name(start, start + 999)
    tmp = path.with_suffix(".tmp")
    # the MPD files are Python-2 json.dumps(indent=4) output: ", " separators, \u escapes
    tmp.write_text(json.dumps(doc, indent=4, separators=(", ", ": ")))
    os.replace(tmp, path)
    return path


def make_slices(out_dir: Path, n_slices: int, seed: int, tracks_approx: int, workers: int) -> list[Path]:
    global _CATALOG
    from segue.data.synth import catalog_for, slice_name

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / slice_name(b * 1000, b * 1000 + 999) for b in range(n_slices)]
    todo = [b for b, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"writing {len(todo)} synthetic slices to {out_dir} ...", flush=True)
        started = time.perf_counter()
        _CATALOG = catalog_for(n_slices * 1000, seed, tracks_approx)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_block, [(out_dir, b, seed) for b in todo]):
                pass
        _CATALOG = None
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return paths


# ---- methods (each runs in a child process) ---------------------------------------------------------------


def run_floor(files: list[Path], out: Path, workers: int) -> dict:
    import orjson

    n_playlists = 0
    for path in files:
        doc = orjson.loads(path.read_bytes())
        n_playlists += len(doc["playlists"])
        del doc
    return {"playlists": n_playlists}


class _Track(msgspec.Struct, gc=False):
    track_uri: str
    track_name: str | None = None
    artist_uri: str | None = None
    artist_name: str | None = None
    album_uri: str | None = None
    album_name: str | None = None
    duration_ms: int | None = None
    pos: int | None = None


class _Playlist(msgspec.Struct, gc=False):
    pid: int
    tracks: list[_Track]
    name: str | None = None
    description: str | None = None
    collaborative: str | None = None
    modified_at: int | None = None
    num_followers: int | None = None
    num_edits: int | None = None
    num_tracks: int | None = None


class _Document(msgspec.Struct, gc=False):
    playlists: list[_Playlist]


def run_typed_decode(files: list[Path], out: Path, workers: int) -> dict:
    """Bytes into msgspec's typed structs (every field segue reads), on one core: the cheapest way we know to
    get Python objects out of the JSON, and segue's decode step before it read slices with Arrow."""
    decoder = msgspec.json.Decoder(_Document)
    n_playlists = 0
    for path in files:
        doc = decoder.decode(path.read_bytes())
        n_playlists += len(doc.playlists)
        del doc
    return {"playlists": n_playlists}


def run_columnar_decode(files: list[Path], out: Path, workers: int) -> dict:
    """The decoding step of segue's workers alone: bytes into Arrow columns (Arrow's JSON reader), one core."""
    from segue.data.mpd import _read_document

    n_playlists = 0
    for path in files:
        table = _read_document(path.read_bytes())
        n_playlists += len(table.column("playlists")[0])
    return {"playlists": n_playlists}


def run_segue(files: list[Path], out: Path, workers: int) -> dict:
    from segue.data.ingest import ingest

    store = ingest(files, out, workers=workers)
    counts = store.manifest["counts"]
    return {"playlists": counts["playlists"], "entries": counts["entries"], "tracks": counts["tracks"]}


def _naive_frame(files: list[Path]):
    """json.load each file; one dict row per playlist-track, the usual notebook idiom; into pandas."""
    import pandas as pd

    rows = []
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        for playlist in doc["playlists"]:
            pid, name = playlist["pid"], playlist.get("name")
            for track in playlist["tracks"]:
                rows.append({"pid": pid, "name": name, **track})
    return pd.DataFrame(rows)


def _write_naive(df, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    df[["pid", "name", "pos", "track_id"]].to_parquet(out / "playlists.parquet")
    tracks = df.drop_duplicates("track_id")[["track_id", "track_uri", "track_name", "artist_id", "artist_uri",
                                              "artist_name", "album_id", "album_uri", "album_name", "duration_ms"]]
    tracks.to_parquet(out / "tracks.parquet")
    return {"playlists": int(df["pid"].nunique()), "entries": len(df), "tracks": len(tracks)}


def run_naive(files: list[Path], out: Path, workers: int) -> dict:
    """The seed's way: a for loop numbers the songs, then the playlists' songs are replaced by their ids."""
    df = _naive_frame(files)
    for kind in ("track", "artist", "album"):
        index: dict[str, int] = {}
        for uri in df[f"{kind}_uri"]:
            if uri not in index:
                index[uri] = len(index)
        df[f"{kind}_id"] = [index[uri] for uri in df[f"{kind}_uri"]]
    return _write_naive(df, out)


def run_naive_factorize(files: list[Path], out: Path, workers: int) -> dict:
    """The same with the ids from ``pd.factorize`` (vectorised): a stronger baseline than the seed's."""
    import pandas as pd

    df = _naive_frame(files)
    for kind in ("track", "artist", "album"):
        df[f"{kind}_id"] = pd.factorize(df[f"{kind}_uri"])[0].astype("int32")
    return _write_naive(df, out)


METHODS = {"floor": run_floor, "typed": run_typed_decode, "columnar": run_columnar_decode, "segue": run_segue,
           "baseline": run_segue, "naive": run_naive, "naive_factorize": run_naive_factorize}


def child_main(method: str, files_json: str, out: str, workers: int) -> None:
    import resource

    files = [Path(p) for p in json.loads(Path(files_json).read_text())]
    started = time.perf_counter()
    info = METHODS[method](files, Path(out), workers)
    info["seconds"] = time.perf_counter() - started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    info["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in usage)  # workers included (they are reaped)
    info["max_proc_rss_mb"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print("RESULT " + json.dumps(info), flush=True)


# ---- driver ------------------------------------------------------------------------------------------------


def measure(method: str, files: list[Path], work: Path, workers: int, baseline_src: Path | None = None) -> dict:
    """Run one method in a subprocess; sample the RSS of its process tree until it exits. ``baseline``
    is segue ingest imported from ``baseline_src`` (another version's ``src`` folder)."""
    import psutil

    files_json = work / f"files-{method}-{len(files)}.json"
    files_json.write_text(json.dumps([str(p) for p in files]))
    out = work / f"out-{method}-{len(files)}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", method, str(files_json), str(out), str(workers)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if method == "baseline":
        env["PYTHONPATH"] = str(baseline_src.absolute())
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                peak = max(peak, rss)
            except psutil.Error:
                pass
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed with exit code {proc.returncode}")
    info = json.loads(next(line[7:] for line in stdout.splitlines() if line.startswith("RESULT ")))
    info["peak_tree_rss_mb"] = peak / 2**20
    info["load"] = os.getloadavg()[0]
    info["mb"] = sum(p.stat().st_size for p in files) / 1e6
    info["slices"] = len(files)
    shutil.rmtree(out, ignore_errors=True)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--small", type=int, default=10, help="the smaller input size for segue ingest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracks-approx", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the generated slices here")
    parser.add_argument("--naive-slices", type=int, default=None,
                        help="slices for the naive methods (default: as many as --slices; 0 skips them); they "
                             "hold every row in memory, ~80 MB per slice")
    parser.add_argument("--baseline-src", type=Path,
                        help="also run segue ingest from this source folder (e.g. `git archive main src`), just "
                             "before this version, for a before/after ratio in one run")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, files_json, out, workers = args.child
        child_main(method, files_json, out, int(workers))
        return

    work = Path(tempfile.mkdtemp(prefix="segue-bench-"))
    data_dir = args.data_dir or work / "mpd"
    try:
        # in a child process: the catalogue is big, and a process's peak RSS is inherited across exec
        maker = multiprocessing.get_context("fork").Process(
            target=make_slices, args=(data_dir, args.slices, args.seed, args.tracks_approx, max(1, args.workers))
        )
        maker.start()
        maker.join()
        if maker.exitcode != 0:
            raise SystemExit("writing the synthetic slices failed")
        files = [data_dir / f"mpd.slice.{b * 1000}-{b * 1000 + 999}.json" for b in range(args.slices)]
        for path in files:  # warm the page cache so no method pays for the first read
            path.read_bytes()
        runs = [("(c) floor: orjson.loads, 1 core", "floor", files),
                ("(c') typed decode (msgspec), 1 core", "typed", files),
                ("(c'') columnar decode (Arrow), 1 core", "columnar", files),
                (f"(a) segue ingest, {args.workers} workers", "segue", files),
                (f"(a) segue ingest, {args.workers} workers", "segue", files[: args.small])]
        if args.baseline_src:
            runs.insert(2, (f"(a0) baseline src, {args.workers} workers", "baseline", files))
        naive_slices = args.slices if args.naive_slices is None else args.naive_slices
        if naive_slices:
            runs.append(("(b) naive: json.load, pd, loop ids", "naive", files[:naive_slices]))
            runs.append(("(b') naive with pd.factorize ids", "naive_factorize", files[:naive_slices]))
        results = {}
        for label, method, chosen in runs:
            print(f"running {label} on {len(chosen)} slices ...", flush=True)
            results[(method, len(chosen))] = (label, measure(method, chosen, work, args.workers, args.baseline_src))
        report(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict, args) -> None:
    print()
    header = (f"{'method':<34} {'slices':>6} {'MB':>7} {'wall s':>7} {'CPU s':>7} {'MB/s':>6} {'playlists/s':>11} "
              f"{'peak RSS MB':>11} {'max proc MB':>11}")
    print(header)
    print("-" * len(header))
    for (method, n), (label, r) in results.items():
        print(f"{label:<34} {n:>6} {r['mb']:>7.0f} {r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} "
              f"{r['mb'] / r['seconds']:>6.0f} "
              f"{r['playlists'] / r['seconds']:>11,.0f} {r['peak_tree_rss_mb']:>11.0f} {r['max_proc_rss_mb']:>11.0f}")
    big = args.slices
    seg = results[("segue", big)][1]
    floor = results[("floor", big)][1]
    print()
    for name in ("naive", "naive_factorize"):
        naive = next((r for (method, _), (_, r) in results.items() if method == name), None)
        if naive is None:
            continue
        speed = (seg["playlists"] / seg["seconds"]) / (naive["playlists"] / naive["seconds"])
        cpu = (naive["cpu_seconds"] / naive["playlists"]) / (seg["cpu_seconds"] / seg["playlists"])
        which = "b" if name == "naive" else "b'"
        print(f"a vs {which}: {speed:.1f}x the "
              f"playlists/s (target >= 5x), {cpu:.1f}x less CPU per playlist; peak memory "
              f"{seg['peak_tree_rss_mb']:.0f} MB at {big} slices vs {naive['peak_tree_rss_mb']:.0f} MB at "
              f"{naive['slices']} slices (naive grows ~linearly with slices)")
    for method, label in (("typed", "typed decode (c')"), ("columnar", "columnar decode (c'')")):
        if (method, big) in results:
            decode = results[(method, big)][1]
            print(f"{label} / orjson.loads (c): {decode['seconds'] / floor['seconds']:.2f} of the time, "
                  f"{1000 * decode['seconds'] / big:.0f} vs {1000 * floor['seconds'] / big:.0f} ms per slice")
    baseline = results.get(("baseline", big))
    if baseline:
        print(f"this version / baseline src ({args.baseline_src}): {seg['seconds'] / baseline[1]['seconds']:.2f} "
              f"of the wall time, {seg['cpu_seconds'] / baseline[1]['cpu_seconds']:.2f} of the CPU seconds")
    print(f"time a / c (floor):      {seg['seconds'] / floor['seconds']:.2f} wall (target <= 2); "
          f"{seg['cpu_seconds'] / floor['cpu_seconds']:.2f} in CPU seconds, so with {args.workers} idle cores "
          f"the wall ratio would be about {seg['cpu_seconds'] / args.workers / floor['cpu_seconds']:.2f}")
    print(f"load average during the run: {results_load(results)} (on {os.cpu_count()} cores; >cores means "
          "other processes took CPU from the parallel method)")
    small = results.get(("segue", args.small))
    if small and args.small != big:
        small = small[1]
        print(f"peak memory of (a): {small['peak_tree_rss_mb']:.0f} MB at {args.small} slices "
              f"({small['tracks']:,} tracks) vs {seg['peak_tree_rss_mb']:.0f} MB at {big} slices "
              f"({seg['tracks']:,} tracks)")
        extrapolate(small, seg, big)


def results_load(results: dict) -> str:
    loads = [r["load"] for _, r in results.values() if "load" in r]
    return f"{min(loads):.1f} to {max(loads):.1f}" if loads else "n/a"


def extrapolate(small: dict, big: dict, n_big: int) -> None:
    """Full MPD on 2 cores: time linear in slices (an upper bound: later slices bring fewer new tracks);
    memory = the measured peak plus the vocabulary growth, at the measured MB per distinct track."""
    per_slice = big["seconds"] / n_big
    seconds = per_slice * MPD["slices"]
    cpu_per_slice = big["cpu_seconds"] / n_big
    grown = max(big["tracks"] - small["tracks"], 1)
    mb_per_track = max(big["peak_tree_rss_mb"] - small["peak_tree_rss_mb"], 0.0) / grown
    memory = big["peak_tree_rss_mb"] + mb_per_track * (MPD["tracks"] - big["tracks"])
    print(f"full MPD ({MPD['slices']:,} slices, {MPD['entries']:,} entries, {MPD['tracks']:,} tracks), "
          f"same machine and workers: ~{seconds / 60:.0f} min as measured ({per_slice:.2f} s/slice; "
          f"~{cpu_per_slice * MPD['slices'] / 2 / 60:.0f} min on 2 idle cores at {cpu_per_slice:.2f} CPU s/slice), "
          "peak memory ~"
          f"{memory / 1024:.1f} GB ({mb_per_track * 2**20:.0f} bytes per distinct track "
          f"above the {big['peak_tree_rss_mb']:.0f} MB measured)")


if __name__ == "__main__":
    main()
