"""Every registered model runs the shared suite (tests/model_suite.py); plus the train/recommend CLI."""

from __future__ import annotations

import pytest
from model_suite import FAST_OVERRIDES, ModelSuite, seeds_of_genre, tiny_playlists
from typer.testing import CliRunner

from segue.data.store import build_store
from segue.models.base import MODEL_MODULES, load_model

for _name in MODEL_MODULES:
    globals()[f"TestModel_{_name}"] = type(
        f"TestModel_{_name}", (ModelSuite,), {"model_name": _name, "overrides": FAST_OVERRIDES.get(_name, {})}
    )


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    return build_store(tiny_playlists(), tmp_path_factory.mktemp("cli") / "store")


def _cli(*args):
    from segue.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_train_and_recommend_cli(cli_store, tmp_path):
    out = tmp_path / "als"
    result = _cli("train", "als", "--store", cli_store.path, "--out", out, "--set", "factors=8",
                  "--set", "iterations=3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "trained als on 320 playlists" in result.output and "peak memory" in result.output
    assert load_model(out).config.factors == 8

    seed = cli_store.track_uris[int(seeds_of_genre(cli_store, 0, 1)[0])]
    result = _cli("recommend", out, "--track", seed, "-k", "5")
    assert result.exit_code == 0, result.output
    assert "rank" in result.output and "song" in result.output

    pid = int(cli_store.pids[3])
    result = _cli("recommend", out, "--pid", pid, "--seeds", "3", "-k", "10")
    assert result.exit_code == 0, result.output
    assert "first 3 of" in result.output and "real continuation" in result.output

    result = _cli("recommend", out, "--title", "country", "-k", "3")
    assert result.exit_code == 0, result.output


def test_cli_errors(cli_store, tmp_path):
    out = tmp_path / "popular"
    assert _cli("train", "popular", "--store", cli_store.path, "--out", out, "--no-progress").exit_code == 0
    cases = [
        (("train", "nope", "--store", cli_store.path, "--out", tmp_path / "x"), "known models: popular"),
        (("train", "popular", "--store", cli_store.path, "--out", tmp_path / "x", "--set", "bogus=1"),
         "unknown setting 'bogus'"),
        (("train", "popular", "--store", cli_store.path, "--out", tmp_path / "x", "--device", "cuda"),
         "no device setting"),
        (("train", "popular", "--store", cli_store.path, "--out", tmp_path / "x", "--nproc", "2"),
         "does not support --nproc"),
        (("recommend", out, "--track", "spotify:track:unknown"), "not in the store"),
        (("recommend", out, "--pid", 10**9), "not in the store"),
        (("recommend", out, "--pid", 1, "-k", 0), "k must be"),
        (("recommend", out), "--track"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


@pytest.mark.parametrize("weighting", ["linear", "bm25"])
def test_als_fold_in_is_the_exact_user_solve(cli_store, weighting):
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    from segue.models.als import ALS, ALSConfig

    model = ALS(ALSConfig(factors=8, iterations=3, weighting=weighting)).fit(cli_store)
    x = cli_store.csr()
    confidence = sp.csr_matrix((model._weights(x.indptr, x.indices), x.indices, x.indptr), shape=x.shape)
    reference = AlternatingLeastSquares(factors=8, regularization=model.config.regularization,
                                        alpha=model.config.alpha, iterations=3, random_state=0, use_cg=False)
    reference.fit(confidence, show_progress=False)
    model.item_factors = np.asarray(reference.item_factors, dtype=np.float32)
    model._prepare()
    rows = np.arange(25)
    expected = reference.recalculate_user(rows, confidence[rows])
    folded = model.fold_in(x.indptr[: len(rows) + 1], x.indices[: x.indptr[len(rows)]])
    np.testing.assert_allclose(folded, expected, rtol=1e-3, atol=1e-4)
