"""Safe outputs: every writer replaces only its own kind of output, never an input, one writer at a time,
and a failed write (disk full, permission denied, a folder under a file) leaves the old output and no temp."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

import segue.io as sio
from segue.data.ingest import ingest
from segue.data.store import Store
from segue.errors import OutputError
from segue.io import FILE_OUTPUT, MODEL_OUTPUT, STORE_OUTPUT, atomic_dir, claim_output


def _squash(text: str) -> str:
    return "".join(text.split())


def _slice(folder: Path, playlists: list[dict], start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mpd.slice.{start}-{start + len(playlists) - 1}.json"
    path.write_text(json.dumps({"info": {"slice": "x"}, "playlists": playlists}))
    return path


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def _pristine(tmp_path_factory, _synth_cache):
    """A store, a split of it and a popular model, written by the CLI once per module."""
    from typer.testing import CliRunner

    import segue.cli  # noqa: F401  (registers every command)
    from segue.commands import app

    root = tmp_path_factory.mktemp("pristine")
    raw = _slice(root / "raw", _synth_cache)
    for args in (["ingest", raw, "--out", root / "store", "--no-progress"],
                 ["split", root / "store", "--out", root / "split", "--per-category", "3"],
                 ["train", "popular", "--store", root / "split" / "train", "--out", root / "model"]):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def workspace(_pristine, tmp_path):
    """A fresh copy of the store, split and model for each test to try to damage."""
    for name in ("raw", "store", "split", "model"):
        shutil.copytree(_pristine / name, tmp_path / name)
    return tmp_path


def test_claim_accepts_new_empty_and_own_kind(tmp_path, synth_playlists):
    for path in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        with claim_output(path, STORE_OUTPUT) as claimed:
            assert claimed == path and (path.parent / f".{path.name}.lock").is_file()
        assert not (path.parent / f".{path.name}.lock").exists()  # the lock goes with the writer
    store = ingest([_slice(tmp_path / "raw", synth_playlists[:5])], tmp_path / "store")
    with claim_output(store.path, STORE_OUTPUT):
        pass


WRITERS = {
    "store": ["ingest", "{raw}", "--out", "{target}", "--no-progress"],
    "split": ["split", "{store}", "--out", "{target}", "--per-category", "3"],
    "model": ["train", "popular", "--store", "{store}", "--out", "{target}"],
    "synth": ["synth", "--playlists", "10", "--out", "{target}", "--no-progress"],
}
OCCUPANTS = ["user folder", "store", "model", "split", "file"]


@pytest.mark.parametrize("writer, occupant", [(w, o) for w in WRITERS for o in OCCUPANTS if w != o])
def test_writers_replace_only_their_own_kind(writer, occupant, workspace, cli):
    writer = WRITERS[writer]
    target = {"user folder": workspace / "mine", "store": workspace / "other_store",
              "model": workspace / "model", "split": workspace / "split", "file": workspace / "notes.txt"}[occupant]
    if occupant == "user folder":
        target.mkdir()
        (target / "thesis.tex").write_text("do not delete")
    elif occupant == "file":
        target.write_text("do not delete")
    elif occupant == "store":
        assert cli("ingest", workspace / "raw", "--out", target, "--no-progress").exit_code == 0
    before = _snapshot(target) if target.is_dir() else target.read_bytes()
    args = [a.format(raw=workspace / "raw", store=workspace / "store", target=target) for a in writer]
    result = cli(*args)
    assert result.exit_code == 1, result.output
    message = _squash(result.stderr)
    assert message.startswith("error:") and "Traceback" not in result.output
    described = {"user folder": "afolderof1entry(thesis.tex)", "store": "aseguestore",
                 "model": "aseguemodel", "split": "aseguesplit", "file": "afile"}[occupant]
    assert described in message
    assert ("--force" in message) == (occupant != "file")  # a file is never replaced by a folder
    assert (_snapshot(target) if target.is_dir() else target.read_bytes()) == before


def test_force_replaces_a_user_folder_but_never_an_input(workspace, cli):
    mine = workspace / "mine"
    mine.mkdir()
    (mine / "old.txt").write_text("x")
    result = cli("train", "popular", "--store", workspace / "store", "--out", mine, "--force")
    assert result.exit_code == 0, result.output
    assert (mine / "config.json").is_file() and not (mine / "old.txt").exists()
    result = cli("split", workspace / "store", "--out", workspace / "store", "--force")
    assert result.exit_code == 1 and _squash("is the input") in _squash(result.stderr)


@pytest.mark.parametrize("args, phrase", [
    (["split", "{store}", "--out", "{store}"], "is the input"),
    (["split", "{store}", "--out", "{store}/sub"], "is inside the input"),
    (["train", "popular", "--store", "{split}/train", "--out", "{split}"], "holds the input"),
    (["ingest", "{raw}", "--out", "{raw}"], "holds the input"),
    (["submit", "{model}", "--challenge", "{split}/challenge_set.json", "--out", "{split}/challenge_set.json"],
     "is the input"),
    (["evaluate", "{model}", "--split", "{split}", "--json", "{split}/answers.json"], "is inside the input"),
    (["score", "{split}/answers.json", "--answers", "{split}/answers.json", "--json", "{split}/answers.json"],
     "is the input"),
])
def test_an_output_is_never_an_input(args, phrase, workspace, cli):
    before = _snapshot(workspace)
    paths = {k: workspace / k for k in ("store", "split", "raw", "model")}
    result = cli(*[a.format(**paths) for a in args])
    assert result.exit_code == 1
    assert _squash(phrase) in _squash(result.stderr) and "Traceback" not in result.output
    assert _snapshot(workspace) == before


@pytest.mark.parametrize("args", [
    ["evaluate", "{model}", "--split", "{split}", "--json", "{blocker}/results.json"],
    ["evaluate", "{model}", "--split", "{split}", "--report", "{blocker}/reports/run"],
    ["stats", "{store}", "--plot", "{blocker}/stats.png"],
    ["submit", "{model}", "--challenge", "{split}/challenge_set.json", "--out", "{blocker}/sub.csv"],
    ["train", "popular", "--store", "{store}", "--out", "{blocker}/m"],
    ["ingest", "{raw}", "--out", "{blocker}/s", "--no-progress"],
])
def test_an_output_under_a_file_fails_before_the_work(args, workspace, cli, monkeypatch):
    import segue.evaluate.runner as runner

    def no_work(*a, **k):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(runner, "evaluate_models", no_work)
    monkeypatch.setattr(runner, "make_submission", no_work)
    (workspace / "blocker").write_text("a file")
    paths = {k: workspace / k for k in ("store", "split", "raw", "model", "blocker")}
    result = cli(*[a.format(**paths) for a in args])
    assert result.exit_code == 1, result.output
    assert _squash(f"error: cannot write {workspace / 'blocker'}") in _squash(result.stderr)
    assert _squash("is a file, not a folder") in _squash(result.stderr)


def test_a_second_writer_fails_at_once_naming_the_first(workspace, cli):
    with claim_output(workspace / "model", MODEL_OUTPUT):
        result = cli("train", "popular", "--store", workspace / "store", "--out", workspace / "model")
    assert result.exit_code == 1
    assert _squash(f"is being written by segue (pid {os.getpid()}") in _squash(result.stderr)
    with pytest.raises(OutputError, match="being written"), claim_output(workspace / "x", FILE_OUTPUT):
        with claim_output(workspace / "x", FILE_OUTPUT):
            pass


def test_permission_denied_is_a_clear_error_before_the_work(workspace, cli, monkeypatch):
    real_open = os.open

    def denied(path, *args, **kwargs):  # root ignores file modes: refuse the lock file as a read-only folder would
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sio.os, "open", denied)
    result = cli("train", "popular", "--store", workspace / "store", "--out", workspace / "model2")
    assert result.exit_code == 1
    assert _squash(f"error: cannot write {workspace / 'model2'}: Permission denied") in _squash(result.stderr)
    assert not (workspace / "model2").exists()


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_keeps_the_old_store_and_leaves_no_temp(workspace, cli, monkeypatch):
    import segue.data.store as store_module

    before = _snapshot(workspace / "store")
    monkeypatch.setattr(store_module.pq, "write_table", _disk_full)
    result = cli("ingest", workspace / "raw", "--out", workspace / "store", "--no-progress")
    assert result.exit_code == 1
    assert _squash(f"error: cannot write {workspace / 'store'}: No space left on device") in _squash(result.stderr)
    assert _snapshot(workspace / "store") == before
    assert not [p.name for p in workspace.iterdir() if p.name.startswith(".")]


def test_disk_full_while_saving_a_model_or_a_file(workspace, cli, monkeypatch):
    import numpy as np

    before = _snapshot(workspace / "model")
    monkeypatch.setattr(np.lib.format, "write_array", _disk_full)  # how segue.arrays writes each array
    monkeypatch.setattr(np, "save", _disk_full)
    result = cli("train", "popular", "--store", workspace / "split" / "train", "--out", workspace / "model")
    assert result.exit_code == 1
    assert _squash(f"cannot write {workspace / 'model'}: No space left on device") in _squash(result.stderr)
    assert _snapshot(workspace / "model") == before
    monkeypatch.setattr(Path, "write_bytes", _disk_full)
    with pytest.raises(OutputError, match="cannot write .*out.json: No space left"):
        sio.write_json(workspace / "out.json", {"a": 1})
    assert not [p.name for p in workspace.iterdir() if p.name.startswith(".")]


def test_an_old_copy_that_cannot_be_removed_is_reported(tmp_path, monkeypatch, caplog):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_text("old")
    monkeypatch.setattr(sio, "_remove_quietly", lambda path: None)  # as rmtree does on a read-only folder
    with caplog.at_level(logging.WARNING, logger="segue.io"), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("new")
    assert (tmp_path / "out" / "a").read_text() == "new"
    backup = tmp_path / f".out.old-{os.getpid()}"
    assert backup.exists() and str(backup) in caplog.text and "could not be removed" in caplog.text


def test_an_interrupt_python_dropped_still_stops_the_commit(tmp_path, monkeypatch, capsys):
    """A signal whose Interrupted is raised inside a weakref callback is dropped by Python (it only reports it);
    the CLI's handler records it, so the writers still refuse to commit and the old outputs stay."""
    import signal
    import sys
    import weakref

    import segue.errors as errors
    from segue.commands._app import _raise_interrupted, _unraisable
    from segue.errors import Interrupted

    monkeypatch.setattr(errors, "_received", [])
    monkeypatch.setattr(sys, "unraisablehook", _unraisable)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_text("old")
    (tmp_path / "file.json").write_text("old")

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _: _raise_interrupted(signal.SIGTERM, None))  # the handler, in a callback
    del thing  # the callback runs and its exception is dropped: execution goes on here
    assert ref() is None and errors._received == [signal.SIGTERM]
    assert "Exception ignored" not in capsys.readouterr().err  # no traceback reaches the user
    with pytest.raises(Interrupted), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("new")
    with pytest.raises(Interrupted), sio.atomic_path(tmp_path / "file.json") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "out" / "a").read_text() == "old" and (tmp_path / "file.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json", "out"]  # no temp left


def test_synth_replaces_its_own_folder_but_not_real_slices(tmp_path, cli, synth_playlists):
    assert cli("synth", "-n", "1500", "--out", tmp_path / "syn", "--no-progress").exit_code == 0
    assert cli("synth", "-n", "10", "--out", tmp_path / "syn", "--no-progress").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == [".segue-synth.json", "mpd.slice.0-9.json"]
    real = _slice(tmp_path / "real", synth_playlists[:5]).parent
    before = _snapshot(real)
    result = cli("synth", "-n", "10", "--out", real, "--no-progress")
    assert result.exit_code == 1 and _squash("not a segue synth folder") in _squash(result.stderr)
    assert _snapshot(real) == before


def test_store_and_model_modes_follow_the_umask(workspace, cli):
    old = os.umask(0o027)
    try:
        assert cli("train", "popular", "--store", workspace / "store", "--out", workspace / "m").exit_code == 0
    finally:
        os.umask(old)
    assert (workspace / "m").stat().st_mode & 0o777 == 0o750
    assert {p.stat().st_mode & 0o777 for p in (workspace / "m").rglob("*") if p.is_file()} == {0o640}
    assert Store.open(workspace / "store").path.stat().st_mode & 0o777 == 0o755


def test_each_writer_replaces_its_own_earlier_output(workspace, cli):
    for kind, args in WRITERS.items():
        target = workspace / f"again_{kind}"
        args = [a.format(raw=workspace / "raw", store=workspace / "store", target=target) for a in args]
        for _ in range(2):
            result = cli(*args)
            assert result.exit_code == 0, (kind, result.output)
        assert not [p.name for p in workspace.iterdir() if p.name.startswith(".")]  # no lock, temp or backup


def test_an_interrupt_names_the_outputs_left_unchanged(workspace, cli, monkeypatch):
    import segue.models.popular as popular

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    before = _snapshot(workspace / "model")
    monkeypatch.setattr(popular.Popular, "_fit", interrupted)
    result = cli("train", "popular", "--store", workspace / "split" / "train", "--out", workspace / "model")
    assert result.exit_code == 130
    assert result.stderr.strip() == f"interrupted; {workspace / 'model'} unchanged"
    assert _snapshot(workspace / "model") == before
