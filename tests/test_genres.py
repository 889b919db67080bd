"""`segue genres`: genre playlists, the genre-song rule, and the report against popular."""

import json
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from segue.cli import app
from segue.errors import InputError
from segue.evaluate.genre import GenreRule, genre_songs, parse_keywords, run_genres, title_mask


@pytest.fixture(scope="module")
def trained(genre_store, trained_meanvar, tmp_path_factory):
    """The store and a folder holding the shared trained meanvar as ``mv``."""
    root = tmp_path_factory.mktemp("genres")
    shutil.copytree(trained_meanvar[1], root / "mv")
    return genre_store, root


def test_title_mask_matches_whole_words_and_alternatives():
    names = ["Country Roads", "countryside", "HIP-HOP bangers", "rap", "Trap", None, "christmas 🎄"]
    assert title_mask(names, "country").tolist() == [True, False, False, False, False, False, False]
    assert title_mask(names, "rap|hip hop").tolist() == [False, False, True, True, False, False, False]
    assert title_mask(names, "christmas")[-1]
    assert parse_keywords(None)[:3] == ["country", "rap|hip hop", "christmas"]
    with pytest.raises(InputError):
        parse_keywords(" , ")


def test_genre_song_rule_uses_lift_and_support():
    # playlists 0-1 are genre playlists; song 0 only there, song 1 everywhere, song 2 too rare
    rows = [[0, 1, 2], [0, 1], [1], [1], [1], [0], [1]]
    data = sp.csr_matrix((np.ones(sum(map(len, rows))), np.concatenate(rows),
                          np.concatenate([[0], np.cumsum([len(r) for r in rows])])), shape=(7, 3))
    genre = np.array([True, True, False, False, False, False, False])
    labels = genre_songs(data, genre, np.ones(7, bool), GenreRule(min_lift=1.2, min_support=3, min_genre=2))
    assert labels["labels"].tolist() == [True, False, False]
    assert 0 < labels["base_rate"] < 1


def test_report_shows_in_genre_recommendations_far_above_popular(trained):
    store, root = trained
    report = run_genres([root / "mv"], store, ["country", "rap|hip hop", "christmas", "polka"],
                        GenreRule(max_playlists=40))
    assert report["models"] == ["mv", "popular"]
    for group in ("country", "rap|hip hop", "christmas"):
        entry = report["genres"][group]
        assert entry["evaluated"] > 0 and entry["genre_songs"] > 0
        shares = entry["recommended_share"]
        assert shares["mv"] > 0.6 and shares["mv"] > 3 * shares["popular"]
        assert len(report["examples"][group]) == 3
    assert "note" in report["genres"]["polka"]


def test_cli_writes_json_and_markdown(trained, tmp_path):
    store, root = trained
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["genres", str(root / "mv"), "--store", str(store.path), "--report", str(out),
                                      "--keywords", "country,rap|hip hop", "--max-playlists", "20"])
    assert result.exit_code == 0, result.output
    assert "country" in result.output and "popular" in result.output
    data = json.loads((tmp_path / "rep.json").read_text())
    assert set(data["genres"]) == {"country", "rap|hip hop"}
    md = (tmp_path / "rep.md").read_text()
    assert "rap\\|hip hop" in md and "| genre |" in md


def test_cli_rejects_a_missing_model_dir(trained, tmp_path):
    store, _ = trained
    result = CliRunner().invoke(app, ["genres", str(tmp_path / "nope"), "--store", str(store.path)])
    assert result.exit_code == 1 and "not a directory" in " ".join(result.output.split())
