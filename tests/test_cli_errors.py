"""No command prints a Python traceback for bad input: damaged stores, models, splits and submissions end in
one `error: ...` line and a non-zero exit; anything unexpected is an "internal error" (traceback under --debug)."""

from __future__ import annotations

import json

import pytest

from segue.data.store import TRACKS_FILE


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, _synth_cache):
    """A store, split and model that work, then each of their files damaged in a copy."""
    from typer.testing import CliRunner

    import segue.cli  # noqa: F401
    from segue.commands import app

    root = tmp_path_factory.mktemp("damaged")
    raw = root / "raw.json"
    raw.write_text(json.dumps({"info": {}, "playlists": _synth_cache}))
    runner = CliRunner()
    for args in (["ingest", raw, "--out", root / "store", "--no-progress"],
                 ["split", root / "store", "--out", root / "split", "--per-category", "3"],
                 ["train", "popular", "--store", root / "split" / "train", "--out", root / "model"],
                 ["submit", root / "model", "--challenge", root / "split" / "challenge_set.json",
                  "--out", root / "sub.csv"]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    for path in (root / "store" / TRACKS_FILE, root / "split" / "train" / TRACKS_FILE):
        path.write_bytes(path.read_bytes()[:100])
    (root / "split" / "answers.json").write_text('{"1": ["spotify:track:')
    (root / "garbage.csv").write_bytes(b"\x00\xffnot a submission")
    (root / "raw_truncated.json").write_text(raw.read_text()[:5000])
    return root


COMMANDS = {
    "synth": ["synth", "-n", "5", "--out", "{root}/raw.json/x", "--no-progress"],
    "ingest": ["ingest", "{root}/raw_truncated.json", "--out", "{root}/new_store", "--no-progress"],
    "stats": ["stats", "{root}/store"],
    "split": ["split", "{root}/store", "--out", "{root}/split2"],
    "train": ["train", "popular", "--store", "{root}/store", "--out", "{root}/model2"],
    "tune": ["tune", "popular", "--store", "{root}/store", "--out", "{root}/model3", "--no-progress"],
    "recommend": ["recommend", "{root}/model", "--title", "rock"],
    "show": ["show", "{root}/model", "--pid", "1"],
    "genres": ["genres", "{root}/model", "--store", "{root}/store"],
    "evaluate": ["evaluate", "{root}/model", "--split", "{root}/split"],
    "submit": ["submit", "{root}/model", "--challenge", "{root}/split/challenge_set.json", "--out", "{root}/s.csv"],
    "verify": ["verify", "{root}/garbage.csv", "--challenge", "{root}/split/challenge_set.json"],
    "score": ["score", "{root}/sub.csv", "--answers", "{root}/split/answers.json"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_fails_with_one_line_on_damaged_input(name, damaged, cli):
    result = cli(*[a.format(root=damaged) for a in COMMANDS[name]])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")  # verify lists each failed check first


def test_the_table_covers_every_command():
    import segue.cli  # noqa: F401
    from segue.commands import app

    assert {c.name or c.callback.__name__ for c in app.registered_commands} <= set(COMMANDS) | {"serve"}


def test_an_unexpected_exception_is_an_internal_error_with_the_traceback_only_under_debug(damaged, cli, monkeypatch):
    import segue.data.stats as stats

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(stats, "compute_stats", broken)
    from segue.data.store import build_store

    store = build_store([{"pid": 1, "tracks": [{"track_uri": "spotify:track:a"}]}], damaged / "tiny").path
    result = cli("stats", store)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == ("error: internal error: RuntimeError: boom; please report it (rerun with --debug "
                                     "for the traceback).")
    result = cli("--debug", "stats", store)
    assert result.exit_code == 1 and "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr
    assert "Traceback" not in cli("stats", store).output  # --debug holds for its own run only


def test_seeds_without_a_pid_is_an_error(damaged, cli):
    result = cli("recommend", damaged / "model", "--title", "x", "--seeds", "3")
    assert result.exit_code == 1 and result.stderr.startswith("error: --seeds takes the first tracks of a --pid")


def test_sizes_are_labelled_in_the_binary_units_they_are_measured_in():
    from segue.commands.models import human_bytes

    assert [human_bytes(n) for n in (512, 1536, 5 * 2**20, 3 * 2**30)] == ["512 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"]


def test_every_setting_the_readme_shows_is_a_real_setting():
    import re
    from pathlib import Path

    from segue.config import apply_overrides
    from segue.models.base import get_model_class

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    uses = re.findall(r"segue train (\w+)[^\n]*?((?:--set \S+\s*)+)", readme)
    assert uses, "the README shows no --set"
    for model, settings in uses:
        cls = get_model_class(model)
        # raises on an unknown setting; a closing backtick ends the value (`segue train m --set k=v`)
        apply_overrides(cls.Config(), re.findall(r"--set ([^\s`]+)", settings))


def test_an_os_error_names_the_file_and_the_reason(damaged, cli, monkeypatch):
    import errno
    import os

    import segue.data.store as store_module

    unreadable = damaged / "split" / "train" / "manifest.json"

    def denied(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(store_module, "read_json", denied)
    result = cli("stats", damaged / "split" / "train")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == f"error: {unreadable}: Permission denied"
