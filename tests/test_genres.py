"""`segue genres`: genre playlists, the genre-song rule, and the report against popular."""

import json
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from segue.cli import app
from segue.data.store import build_store
from segue.errors import InputError
from segue.evaluate.genre import (
    GenreRule,
    column_sums,
    label_units,
    parse_keywords,
    run_genres,
    title_mask,
    wilson_lower,
)


@pytest.fixture(scope="module")
def trained(meanvar_store, trained_meanvar, tmp_path_factory):
    """The store and a folder holding the shared trained meanvar as ``mv``."""
    root = tmp_path_factory.mktemp("genres")
    shutil.copytree(trained_meanvar[1], root / "mv")
    return meanvar_store, root


def test_title_mask_matches_whole_words_and_alternatives():
    names = ["Country Roads", "countryside", "HIP-HOP bangers", "rap", "Trap", None, "christmas 🎄"]
    assert title_mask(names, "country").tolist() == [True, False, False, False, False, False, False]
    assert title_mask(names, "rap|hip hop").tolist() == [False, False, True, True, False, False, False]
    assert title_mask(names, "christmas")[-1]
    assert parse_keywords(None)[:3] == ["country", "rap|hip hop", "christmas"]
    with pytest.raises(InputError):
        parse_keywords(" , ")


def test_label_rule_uses_a_lower_bound_against_the_base_rate_and_support():
    # playlists 0-3 are genre playlists; unit 0 only there (4 of 4), unit 1 everywhere, unit 2 once (1 of 1),
    # unit 3 in 2 genre playlists of 6
    rows = [[0, 1, 2], [0, 1], [0, 1, 3], [0, 1, 3], [1, 3], [1, 3], [1, 3], [3]] + [[1]] * 12
    data = sp.csr_matrix((np.ones(sum(map(len, rows))), np.concatenate(rows),
                          np.concatenate([[0], np.cumsum([len(r) for r in rows])])), shape=(20, 4))
    genre = np.arange(20) < 4
    total, in_genre = column_sums(data, np.ones(20, bool)), column_sums(data, genre)
    assert total.tolist() == [4, 19, 1, 6] and in_genre.tolist() == [4, 4, 1, 2]
    labels = label_units(total, in_genre, GenreRule(min_lift=1.5), min_support=2)
    assert labels["base_rate"] == pytest.approx(11 / 30) and labels["threshold"] == pytest.approx(1.5 * 11 / 30)
    # unit 0: lower bound 0.596 >= 0.55; unit 2: support 1 < 2; units 1 and 3: shares near the base rate
    assert labels["labels"].tolist() == [True, False, False, False]
    assert not label_units(total, in_genre, GenreRule(min_lift=1.5), min_support=5)["labels"].any()
    # Wilson lower bounds (z = 1.645): 4/4 -> 0.596, 1/1 -> 0.27, 0/5 -> 0
    assert wilson_lower(np.array([4, 1, 0]), np.array([4, 1, 5]), 1.645) == pytest.approx([0.5965, 0.2698, 0.0],
                                                                                           abs=1e-3)


def test_minimum_support_adapts_to_the_store_size():
    rule = GenreRule()
    assert [rule.support_for(n) for n in (300, 6_500, 50_000, 1_000_000)] == [2, 3, 4, 5]
    assert GenreRule(min_support=7).support_for(300) == 7
    with pytest.raises(InputError, match="level"):
        GenreRule(level="playlist")
    with pytest.raises(InputError, match="min_lift"):
        GenreRule(min_lift=float("nan"))


def test_report_shows_in_genre_recommendations_far_above_popular(trained):
    store, root = trained
    report = run_genres([root / "mv"], store, ["country", "rap|hip hop", "christmas", "polka"],
                        GenreRule(max_playlists=40))
    assert report["models"] == ["mv", "popular"]
    for group in ("country", "rap|hip hop", "christmas"):
        entry = report["genres"][group]
        assert entry["evaluated"] > 0 and entry["genre_songs"] > 0 and entry["labelled_units"] > 0
        assert entry["seed_coverage"] > 0.3 and "warning" not in entry
        shares = entry["recommended_share"]
        assert shares["mv"] > 0.6 and shares["mv"] > 3 * shares["popular"]
        lo, hi = entry["recommended_share_ci95"]["mv"]
        assert lo <= shares["mv"] <= hi and hi < 1.0 + 1e-9
        assert len(report["examples"][group]) == 3
    assert "note" in report["genres"]["polka"]


def test_cli_writes_json_and_markdown(trained, tmp_path):
    store, root = trained
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["genres", str(root / "mv"), "--store", str(store.path), "--report", str(out),
                                      "--keywords", "country,rap|hip hop", "--max-playlists", "20"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "rep.json").read_text())
    assert set(data["genres"]) == {"country", "rap|hip hop"} and data["level"] == "artist"
    out = " ".join(result.output.split())
    for group, entry in data["genres"].items():  # each row shows the JSON's figures and coverage
        row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith(group))
        assert f"{entry['recommended_share']['mv']:.1%}" in row and f"{entry['seed_coverage']:.1%}" in row
        assert f"{entry['recommended_share']['popular']:.1%}" in row and f"{entry['labelled_units']:,}" in row
    assert "labels: an artist is a genre's when it occurs in >= 2 playlists" in out  # the line under the table
    md = (tmp_path / "rep.md").read_text()
    assert "rap\\|hip hop" in md and "| genre |" in md and "labels: an artist" in md
    assert (tmp_path / "rep.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_a_missing_model_dir(trained, tmp_path):
    store, _ = trained
    result = CliRunner().invoke(app, ["genres", str(tmp_path / "nope"), "--store", str(store.path)])
    assert result.exit_code == 1 and "not a directory" in " ".join(result.output.split())


def test_on_sparse_playlists_artist_labels_give_ordered_non_zero_figures(tmp_path):
    # Real playlists are sparse: most songs occur in 1-3 playlists, where song-level labels find nothing.
    # A large catalogue and few playlists make such a store (the dense profile's genre structure, spread thin).
    from segue.data.synth import generate_playlists
    from segue.models.base import get_model_class

    store = build_store(generate_playlists(1000, seed=3, tracks_approx=150_000, profile="dense"), tmp_path / "sparse")
    occurrences = np.asarray(store.csr(binary=True).sum(0)).ravel()
    assert (occurrences <= 3).mean() > 0.8
    get_model_class("cooccur")().fit(store).save(tmp_path / "cooccur")
    seed_genres = ["country", "rap|hip hop", "christmas"]
    report = run_genres([tmp_path / "cooccur"], store, seed_genres, GenreRule())
    for group in seed_genres:
        entry = report["genres"][group]
        assert entry["labelled_units"] >= 20 and entry["seed_coverage"] > 0.2 and "warning" not in entry, entry
        shares = entry["recommended_share"]
        assert shares["cooccur"] > 0.2 and shares["cooccur"] > 2 * shares["popular"] + 0.1, shares
        assert entry["recommended_share_ci95"]["popular"][1] < entry["recommended_share_ci95"]["cooccur"][0]
    # Songs held to a support none of them has: nothing is labelled, and the report says so
    # instead of a silent 0%.
    strict = run_genres([tmp_path / "cooccur"], store, ["christmas"], GenreRule(level="song", min_support=10_000))
    entry = strict["genres"]["christmas"]
    assert entry["labelled_units"] == 0 and entry["seed_coverage"] == 0
    assert "too little is labelled to judge 'christmas': 0 songs labelled" in entry["warning"]
