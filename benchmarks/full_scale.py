"""The whole pipeline at one size, one step at a time, each step's wall time and peak memory measured.

    python benchmarks/full_scale.py --playlists 1000000 --dir runs/full     # the MPD's size
    python benchmarks/full_scale.py --playlists 100000 --dir runs/100k      # a point of the scaling curve
    python benchmarks/full_scale.py --dir runs/full --steps train_als,evaluate_als --redo   # rerun two steps
    python benchmarks/full_scale.py --playlists 250000 --dir runs/250k --slices runs/full/raw   # a prefix of those
    python benchmarks/full_scale.py --playlists 1000000 --dir runs/mpd --slices ~/mpd/data     # your own MPD
    python benchmarks/full_scale.py --plot runs/100k runs/250k runs/500k runs/full --out docs/scaling.png

Steps: ``synth`` (the realistic profile, official slice files; with ``--slices DIR`` no synth: ``DIR/raw`` links
the first ``--playlists`` / 1,000 slice files of DIR, in pid order, so the points of a curve can be prefixes of
one generated MPD, or of the real one), ``ingest``, ``split`` (``--per-category``:
1,000 per category, the official 10,000-playlist challenge set, from 1M playlists; smaller runs keep the
same 1% share), ``train_MODEL`` and ``evaluate_MODEL`` per model of ``MODELS``, ``submit`` and ``verify``.
Every step is one ``segue`` command in its own process; its wall time, the peak of the summed RSS of its
process tree (sampled every 50 ms with psutil; pages a forked worker shares with its parent count in
both, so it is an upper bound) and the largest single process's peak RSS (``wait4``'s ``ru_maxrss``, exact) are written to ``DIR/full_scale.json`` as soon as the step ends. A rerun skips the
steps already recorded as done (resumable; ``--redo`` reruns the ``--steps`` named), and stops at the
first failing step with its output tail in the JSON.

Run it on a machine doing nothing else: the figures are the machine's, not segue's alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

# One line per model: its name and the settings it trains with here. A neural or two-stage model goes in
# with a stated budget (rounds / examples), the same settings a user would pass to `segue train --set`.
MODELS: list[tuple[str, list[str]]] = [
    ("popular", []),
    ("title", []),
    ("cooccur", ["fallback={models}/title"]),
    ("als", ["fallback={models}/title"]),
    # budget: one round, one example per training playlist (meanvar: a (prefix, later song) pair;
    # sequential: one window, over the first 100 slices' playlists: a window predicts every position, ~45x the
    # targets of a meanvar pair, so all 990k playlists would take ~3 h on 2 cores)
    ("meanvar", ["fallback={models}/title", "rounds=1", "pairs_per_playlist=1"]),
    ("sequential", ["fallback={models}/title", "rounds=1", "files=100"]),
    # two-stage: its candidate models and a LightGBM ranker learnt from 3,000 held-out training playlists; the
    # candidate models are not refitted with those 0.3% of the store (refit=false halves the ~40 min fit)
    ("rerank", ["ranker_playlists=3000", "refit=false"]),
]
SUBMIT_MODEL = "als"
RESULTS = "full_scale.json"
SAMPLE_SECONDS = 0.05


def per_category_for(playlists: int) -> int:
    """Challenge playlists per category: the official 1,000 at 1M playlists, the same 1% share below."""
    return max(1, min(1000, playlists // 1000))


def plan(d: Path, playlists: int, per_category: int, models: list[tuple[str, list[str]]],
         seed: int, synth_options: list[str] = (), synth: bool = True) -> dict[str, list[str]]:
    """Step name -> the `segue` arguments it runs, in order (no ``synth`` step when ``synth`` is false)."""
    split, mdir = d / "split", d / "models"
    steps = {
        "synth": ["synth", "--playlists", str(playlists), "--out", str(d / "raw"), "--seed", str(seed),
                  *synth_options],
        "ingest": ["ingest", str(d / "raw"), "--out", str(d / "store")],
        "split": ["split", str(d / "store"), "--out", str(split), "--per-category", str(per_category),
                  "--seed", str(seed)],
    }
    for name, settings in models:
        sets = [arg for s in settings for arg in ("--set", s.format(models=mdir))]
        steps[f"train_{name}"] = ["train", name, "--store", str(split / "train"), "--out", str(mdir / name),
                                  "--no-progress", *sets]
    for name, _ in models:
        steps[f"evaluate_{name}"] = ["evaluate", str(mdir / name), "--split", str(split),
                                     "--json", str(d / "evaluation" / f"{name}.json"), "--no-progress"]
    challenge = str(split / "challenge_set.json")
    steps["submit"] = ["submit", str(mdir / SUBMIT_MODEL), "--challenge", challenge, "--out",
                       str(d / "submission.csv.gz"), "--team", "segue-full-scale", "--email", "bench@example.org",
                       "--no-progress"]
    steps["verify"] = ["verify", str(d / "submission.csv.gz"), "--challenge", challenge]
    if not synth:
        del steps["synth"]
    return steps


SLICE_FILE = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json$")


def link_slices(source: Path, raw: Path, playlists: int) -> None:
    """``raw`` := symbolic links to the slice files of ``source`` holding pids 0 .. playlists - 1."""
    files = sorted((int(m.group(1)), int(m.group(2)), p) for p in source.iterdir()
                   if (m := SLICE_FILE.match(p.name)))
    chosen = [f for f in files if f[0] < playlists]
    if not chosen or chosen[-1][1] + 1 != playlists or any(a != b[1] + 1 for (a, _, _), b in zip(chosen[1:], chosen)):
        raise SystemExit(f"error: {source} has no run of slice files covering pids 0-{playlists - 1} exactly "
                         f"(found {len(files)} mpd.slice.*.json files); choose --playlists at a slice boundary.")
    raw.mkdir(exist_ok=True)
    for old in raw.iterdir():
        if old.is_symlink():
            old.unlink()
    for _, _, path in chosen:
        (raw / path.name).symlink_to(path.resolve())


def measure(argv: list[str], env: dict) -> dict:
    """Run one command; wall time, peak RSS summed over its process tree, and its largest process's peak."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak_tree, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            peak_tree = max(peak_tree, total)
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read()  # until the command closes it (it ends)
    # wait4 reports this child's own rusage, whose ru_maxrss covers it and the descendants it waited for
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "seconds": round(seconds, 2),
        "peak_rss_tree_mb": round(peak_tree / 2**20, 1),
        "max_process_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "rc": proc.returncode,
        "output_tail": output.decode("utf-8", "replace")[-2000:],
    }


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path: Path, results: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)


def machine() -> dict:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def run(args: argparse.Namespace) -> int:
    d = args.dir.resolve()
    d.mkdir(parents=True, exist_ok=True)
    path = d / RESULTS
    results = load_results(path)
    per_category = args.per_category or per_category_for(args.playlists)
    synth_options = ["--tracks-approx", str(args.tracks_approx)] if args.tracks_approx else []
    settings = {"playlists": args.playlists, "per_category": per_category, "seed": args.seed,
                "synth_options": synth_options}
    if args.slices:
        settings["slices"] = str(args.slices.resolve())
    if results.get("settings", settings) != settings:
        print(f"error: {path} was made with {results['settings']}, not {settings}; use another --dir.",
              file=sys.stderr)
        return 2
    models = [m for m in MODELS if not args.models or m[0] in args.models.split(",")]
    steps = plan(d, args.playlists, per_category, models, args.seed, synth_options, synth=not args.slices)
    if args.slices:
        link_slices(args.slices, d / "raw", args.playlists)
    chosen = args.steps.split(",") if args.steps else list(steps)
    unknown = [s for s in chosen if s not in steps]
    if unknown:
        print(f"error: unknown steps {unknown}; the steps are {', '.join(steps)}.", file=sys.stderr)
        return 2
    results.update(settings=settings, machine=results.get("machine") or machine())
    recorded = results.setdefault("steps", {})
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    segue = [args.segue] if args.segue else [sys.executable, "-m", "segue"]
    for name in chosen:
        if recorded.get(name, {}).get("rc") == 0 and not args.redo:
            print(f"{name}: done before ({recorded[name]['seconds']} s), skipped")
            continue
        argv = segue + steps[name]
        if name.startswith("evaluate_"):
            (d / "evaluation").mkdir(exist_ok=True)
        print(f"{name}: {shlex.join(steps[name])}", flush=True)
        step = measure(argv, env)
        step.update(command=shlex.join(["segue", *steps[name]]), load_average=list(os.getloadavg()),
                    finished=datetime.datetime.now().isoformat(timespec="microseconds"))
        recorded[name] = step
        results = {**load_results(path), "settings": settings, "machine": results["machine"]}
        results.setdefault("steps", {})[name] = step  # re-read first: another run may have recorded other steps
        save_results(path, results)
        print(f"  {step['seconds']} s, peak {step['peak_rss_tree_mb']:,.0f} MB (tree), "
              f"{step['max_process_rss_mb']:,.0f} MB (largest process), rc {step['rc']}", flush=True)
        if step["rc"] != 0:
            print(step["output_tail"], file=sys.stderr)
            return 1
    print(table(results))
    return 0


def table(results: dict) -> str:
    """The results as a Markdown table (the README's)."""
    lines = ["| step | time (s) | peak memory, process tree (MB) | largest process (MB) |", "|---|---|---|---|"]
    for name, step in results.get("steps", {}).items():
        lines.append(f"| {name} | {step['seconds']:,.1f} | {step['peak_rss_tree_mb']:,.0f} | "
                     f"{step['max_process_rss_mb']:,.0f} |")
    return "\n".join(lines)


def plot(dirs: list[Path], out: Path) -> None:
    """Time and peak memory per step against the number of playlists, one line per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted((load_results(d / RESULTS) for d in dirs), key=lambda r: r["settings"]["playlists"])
    names = [n for n in runs[-1]["steps"]]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.cm.tab20.colors
    for number, name in enumerate(names):
        style = {"color": colors[number % len(colors)], "marker": "o",
                 "linestyle": "--" if name.startswith("evaluate_") else "-"}
        points = [(r["settings"]["playlists"], r["steps"][name]) for r in runs
                  if r["steps"].get(name, {}).get("rc") == 0]
        if not points:
            continue
        x = [p for p, _ in points]
        ax_t.plot(x, [s["seconds"] for _, s in points], label=name, **style)
        ax_m.plot(x, [s["peak_rss_tree_mb"] / 1024 for _, s in points], label=name, **style)
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak RSS of the step's processes (GB)")):
        ax.set(xlabel="playlists", ylabel=label, xscale="log", yscale="log")
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7, ncol=2)
    loads = [load for r in runs for load in r["machine"]["load_average_at_start"][:1]]
    fig.suptitle(f"segue step by step vs data size, measured by benchmarks/full_scale.py on "
                 f"{runs[-1]['machine']['cpus']} cores (load average at start {min(loads):.0f}-{max(loads):.0f})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the data, models and full_scale.json go")
    parser.add_argument("--playlists", type=int, default=1_000_000)
    parser.add_argument("--per-category", type=int, default=0, help="default: 1,000 at 1M playlists, 1%% below")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracks-approx", type=int, help="segue synth's catalogue size (default: the profile's)")
    parser.add_argument("--slices", type=Path, help="no synth: take the first playlists from this folder's "
                        "mpd.slice.*.json files (a generated MPD, or your own copy of the real one)")
    parser.add_argument("--models", help="comma-separated subset of " + ",".join(m for m, _ in MODELS))
    parser.add_argument("--steps", help="comma-separated steps to run (default: all, in order)")
    parser.add_argument("--redo", action="store_true", help="rerun steps already recorded as done")
    parser.add_argument("--segue", help="the segue executable (default: this Python's -m segue)")
    parser.add_argument("--table", action="store_true", help="print DIR's results as a Markdown table and stop")
    parser.add_argument("--plot", nargs="+", type=Path, metavar="DIR", help="plot these runs' results")
    parser.add_argument("--out", type=Path, default=Path("scaling.png"), help="the plot's file (with --plot)")
    args = parser.parse_args(argv)
    if args.plot:
        plot(args.plot, args.out)
        return 0
    if args.dir is None:
        parser.error("--dir is required")
    if args.table:
        print(table(load_results(args.dir / RESULTS)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
