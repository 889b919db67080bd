"""`segue show`: the write-up's show_recommendations for any model, with the playlist from another store."""

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from segue.cli import app
from segue.evaluate.show import confidence
from segue.models.base import get_model_class

HELD_OUT = 280  # a playlist of the full store that is not in the training store


@pytest.fixture(scope="module")
def setup(tmp_path_factory, meanvar_playlists, meanvar_store, meanvar_full_store, trained_meanvar):
    """The shared meanvar (trained on the first 250 playlists, its own smaller vocabulary) and popular."""
    root = tmp_path_factory.mktemp("show")
    shutil.copytree(trained_meanvar[1], root / "mv")
    get_model_class("popular")().fit(meanvar_store).save(root / "pop")
    return root, meanvar_full_store, meanvar_store, meanvar_playlists


def test_show_meanvar_on_a_training_playlist(setup):
    root, _, train, playlists = setup
    result = CliRunner().invoke(app, ["show", str(root / "mv"), "--pid", str(playlists[5]["pid"])])
    assert result.exit_code == 0, result.output
    out = result.output
    assert playlists[5]["name"] in out
    assert "First 20 songs" in out and "Songs 21–30" in out and "Top 15 recommendations" in out
    assert " 30. " in out
    # The table and the summary line carry the library's figures for this playlist.
    from segue.evaluate.show import LATER, SAME_ARTIST, TARGET, show_playlist
    from segue.models.base import load_model

    shown = show_playlist(load_model(root / "mv", train), train, train, train.row_of_pid(playlists[5]["pid"]), 15)
    assert len(shown.recommended) == 15
    rows = [line for line in out.splitlines() if "%" in line and "│" in line]
    assert len(rows) == 15
    for row, c in zip(rows, shown.confidence.tolist()):
        assert f"{c:.2%}" in row
    assert shown.count(TARGET) + shown.count(LATER) + shown.count(SAME_ARTIST) > 0  # meanvar stays on topic
    assert (f"{shown.count(TARGET)} of 10 targets (songs 21–30) and {shown.count(LATER)} later songs"
            in " ".join(out.split()))


def test_show_a_held_out_playlist_from_another_store_for_any_model(setup):
    root, full, _, playlists = setup
    pid = playlists[HELD_OUT]["pid"]  # not in the train store
    for model in ("mv", "pop"):
        result = CliRunner().invoke(app, ["show", str(root / model), "--pid", str(pid), "-k", "5",
                                          "--store", str(full.path)])
        assert result.exit_code == 0, result.output
        assert "Top 5 recommendations" in result.output


def test_show_unknown_pid_is_a_clear_error(setup):
    root, *_ = setup
    result = CliRunner().invoke(app, ["show", str(root / "mv"), "--pid", "999999"])
    assert result.exit_code == 1 and "pid 999999" in result.output


def test_normalised_confidence_for_models_without_a_hook():
    class NoHook:
        pass

    conf = confidence(NoHook(), np.array([1]), np.array([3, 4, 5]), np.array([2.0, 1.0, -1.0], np.float32))
    assert np.isclose(conf.sum(), 1.0) and conf[0] > conf[1] > conf[2] >= 0


def test_show_finds_a_held_out_playlist_by_title(setup):
    root, full, train, playlists = setup
    genre = playlists[HELD_OUT]["name"].split()[1].lower()
    result = CliRunner().invoke(app, ["show", str(root / "pop"), "--title-contains", genre, "--store", str(full.path)])
    assert result.exit_code == 0, result.output
    shown = int(result.output.split("pid ", 1)[1].split(":", 1)[0])
    assert genre in full.names[full.row_of_pid(shown)].lower()
    assert shown not in set(train.pids.tolist())  # held-out playlists come first


def test_show_needs_exactly_one_of_pid_or_title(setup):
    root, *_ = setup
    neither = CliRunner().invoke(app, ["show", str(root / "pop")])
    assert neither.exit_code == 1 and "exactly one" in neither.output
    missing = CliRunner().invoke(app, ["show", str(root / "pop"), "--title-contains", "no such title zzz"])
    assert missing.exit_code == 1 and "no playlist" in missing.output
