"""benchmarks/full_scale.py runs every step of the pipeline on a tiny size, records each, and resumes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def full_scale():
    spec = importlib.util.spec_from_file_location("full_scale", ROOT / "benchmarks" / "full_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--playlists", "600", "--tracks-approx", "2000", "--per-category", "3"]


def test_every_step_runs_and_is_recorded_then_skipped(full_scale, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert full_scale.main(["--dir", str(run_dir), *TINY]) == 0
    results = json.loads((run_dir / full_scale.RESULTS).read_text())
    expected = list(full_scale.plan(run_dir, 600, 3, full_scale.MODELS, 0))
    assert list(results["steps"]) == expected
    assert {f"train_{m}" for m, _ in full_scale.MODELS} <= set(expected)
    for name, step in results["steps"].items():
        assert step["rc"] == 0, (name, step["output_tail"])
        assert step["seconds"] > 0 and step["cpu_seconds"] > 0
        # a Python process holds tens of MB: zero would mean the measurement saw nothing
        assert step["peak_rss_tree_mb"] > 20 and step["max_process_rss_mb"] > 20, name
    for model, _ in full_scale.MODELS:
        evaluation = json.loads((run_dir / "evaluation" / f"{model}.json").read_text())
        assert "ndcg" in json.dumps(evaluation)
    assert "OK (passes every check" in results["steps"]["verify"]["output_tail"]
    table = full_scale.table(results)
    assert table.count("\n") == len(expected) + 1

    # resumable: a second run skips every recorded step; --redo reruns only the steps named
    before = {name: step["finished"] for name, step in results["steps"].items()}
    capsys.readouterr()
    assert full_scale.main(["--dir", str(run_dir), *TINY]) == 0
    assert capsys.readouterr().out.count("skipped") == len(expected)
    assert full_scale.main(["--dir", str(run_dir), *TINY, "--steps", "verify", "--redo"]) == 0
    after = json.loads((run_dir / full_scale.RESULTS).read_text())["steps"]
    assert [n for n in after if after[n]["finished"] != before[n]] == ["verify"]

    # another size in the same folder is refused rather than mixed into these results
    assert full_scale.main(["--dir", str(run_dir), "--playlists", "700"]) == 2


def test_a_failing_step_stops_the_run_and_is_recorded(full_scale, tmp_path):
    run_dir = tmp_path / "run"
    # verify before any submission exists: segue exits non-zero, the script records it and stops
    assert full_scale.main(["--dir", str(run_dir), *TINY, "--steps", "verify,synth"]) == 1
    steps = json.loads((run_dir / full_scale.RESULTS).read_text())["steps"]
    assert list(steps) == ["verify"]
    assert steps["verify"]["rc"] != 0 and "error" in steps["verify"]["output_tail"]


def test_slices_takes_a_prefix_of_an_existing_dataset_instead_of_synth(full_scale, tmp_path):
    from segue.data.store import Store
    from segue.data.synth import synthesize

    synthesize(tmp_path / "mpd", 3000, seed=1, tracks_approx=2000)
    run_dir = tmp_path / "run"
    argv = ["--dir", str(run_dir), "--playlists", "2000", "--slices", str(tmp_path / "mpd"), "--steps", "ingest"]
    assert full_scale.main(argv) == 0
    assert sorted(p.name for p in (run_dir / "raw").iterdir()) == ["mpd.slice.0-999.json", "mpd.slice.1000-1999.json"]
    assert Store(run_dir / "store").n_playlists == 2000
    assert "synth" not in full_scale.plan(run_dir, 2000, 2, full_scale.MODELS, 0, synth=False)
    # not at a slice boundary: refused with a message, nothing run
    with pytest.raises(SystemExit, match="slice boundary"):
        full_scale.main(["--dir", str(tmp_path / "other"), "--playlists", "1500", "--slices", str(tmp_path / "mpd")])
