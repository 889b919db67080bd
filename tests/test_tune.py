"""`segue tune`: search spaces, a search end to end, resuming, and never touching held-out playlists."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from segue.config import check_settings
from segue.data.split import load_split, make_split
from segue.data.store import build_store
from segue.errors import InputError, Interrupted
from segue.evaluate import tune as tune_module
from segue.evaluate.tune import (PLOT_FILE, STUDY_FILE, config_for, parse_space, search_space, tune,
                                 validation_per_category, work_dir)
from segue.io import read_json
from segue.models.base import available_models, get_model_class, load_model

# The models whose search space the project declares; a model added later gets one or is listed here.
TUNED_MODELS = ("popular", "title", "cooccur", "als", "meanvar", "sequential", "rerank")


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from segue.data.synth import generate_playlists

    return build_store(generate_playlists(300, seed=7), tmp_path_factory.mktemp("tune") / "store")


@pytest.mark.parametrize("model", available_models())
def test_every_search_space_samples_valid_configs(model):
    cls = get_model_class(model)
    if not getattr(cls, "search_space", None):
        assert model not in TUNED_MODELS, f"{model} lost its search space"
        pytest.skip(f"{model} declares no search space (`segue tune {model}` needs --space)")
    space = search_space(model)
    assert any(not p.fixed for p in space.values())
    for p in space.values():  # both ends of every range are legal settings
        if p.low is not None:
            check_settings(config_for(model, space, {p.name: p.low}))
            check_settings(config_for(model, space, {p.name: p.high}))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(25):
        trial = study.ask()
        params = {name: p.suggest(trial) for name, p in space.items() if not p.fixed}
        config = config_for(model, space, params)
        check_settings(config)
        assert isinstance(config, cls.Config)
        for name, value in params.items():
            assert getattr(config, name) == value
            assert space[name].contains(value)
        study.tell(trial, 0.0)


def test_space_file_overrides_and_is_validated(tmp_path):
    good = tmp_path / "space.toml"
    good.write_text('neighbors = {low = 10, high = 50}\nalpha = 0.5\npower = {choices = [1.0, 2.0]}\n')
    space = search_space("cooccur", good)
    assert (space["neighbors"].low, space["neighbors"].high) == (10, 50)
    assert space["alpha"].fixed and space["alpha"].value == 0.5
    assert space["power"].choices == (1.0, 2.0)
    assert config_for("cooccur", space, {"neighbors": 12, "power": 2.0}).alpha == 0.5
    assert "title_weight" in space  # entries the file does not name keep the model's range

    cases = {
        '{"nieghbors": {"low": 1, "high": 5}}': "unknown setting 'nieghbors'",
        '{"alpha": {"low": 0.2, "high": 2.0}}': "high of alpha: setting alpha=2.0: must be <= 1",
        '{"neighbors": {"low": 50, "high": 10}}': "needs low < high",
        '{"neighbors": {"low": 1.5, "high": 10}}': "low of neighbors must be an integer",
        '{"title_weight": {"low": 0.0, "high": 1.0, "log": true}}': "log: true, so low must be > 0",
        '{"neighbors": {"min": 1, "max": 5}}': "should be {\"low\": a, \"high\": b}",
        '{"neighbors": {"choices": []}}': "non-empty list",
        '{"neighbors": 0}': "the fixed value of neighbors: setting neighbors=0: must be >= 1",
        '[1, 2]': "a search space should be an object",
        '{"neighbors": ': "is not valid JSON",
    }
    for text, message in cases.items():
        path = tmp_path / "space.json"
        path.write_text(text)
        with pytest.raises(InputError, match="space.json") as info:
            search_space("cooccur", path)
        assert message in str(info.value), (text, str(info.value))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("neighbors = {low = 10,")
    with pytest.raises(InputError, match="bad.toml is not valid TOML"):
        search_space("cooccur", bad_toml)
    with pytest.raises(InputError, match="is a str setting"):
        parse_space(get_model_class("als").Config, {"weighting": {"low": 1, "high": 2}}, "x")


def test_tune_writes_a_loadable_model_and_continues(cli, tiny_store, tmp_path):
    out = tmp_path / "tuned"
    args = ["tune", "cooccur", "--store", str(tiny_store.path), "--out", str(out), "--no-progress"]
    result = cli(*args, "--trials", "3")
    assert result.exit_code == 0, result.output
    assert "best validation r_precision" in result.output
    assert not work_dir(out).exists()
    model = load_model(out)
    assert model.name == "cooccur" and model.store_info["fingerprint"] == tiny_store.fingerprint
    ids, _ = model.recommend([np.array([0, 1, 2], dtype=np.int32)], k=10)
    assert (ids >= 0).all()
    assert (out / STUDY_FILE).is_file() and (out / PLOT_FILE).stat().st_size > 0
    search = read_json(out / "config.json")["fit_info"]["search"]
    assert search["n_trials"] == 3 and len(search["trials"]) == 3
    assert search["validation"]["seed"] == tune_module.VALIDATION_SEED
    assert search["validation"]["playlists"] > 0
    assert set(search["space"]) == set(search_space("cooccur"))
    best = max(t["value"] for t in search["trials"] if t["state"] == "complete")
    assert search["best_value"] == best
    assert search["default_value"] == search["trials"][0]["value"]  # trial 0 is the defaults
    assert search["trials"][0]["params"]["neighbors"] == 200
    saved = read_json(out / "config.json")["config"]
    assert all(saved[k] == v for k, v in search["best_params"].items())

    # asked for more trials, a finished search continues from DIR/study.sqlite3
    result = cli(*args, "--trials", "4")
    assert result.exit_code == 0, result.output
    assert "(3 from an earlier run)" in result.output
    assert read_json(out / "config.json")["fit_info"]["search"]["n_trials"] == 4

    # ... but not as another metric's search
    result = cli(*args, "--trials", "5", "--metric", "ndcg")
    assert result.exit_code == 1 and "--fresh" in result.output
    result = cli(*args, "--trials", "2", "--metric", "clicks", "--fresh")
    assert result.exit_code == 0, result.output
    search = read_json(out / "config.json")["fit_info"]["search"]
    assert search["n_trials"] == 2 and search["direction"] == "minimize"


def test_a_search_resumes_after_an_interruption(tiny_store, tmp_path, monkeypatch):
    cls = get_model_class("cooccur")
    fit = cls.fit
    calls = {"fit": 0, "split": 0}

    def interrupted_on_third_fit(self, *args, **kwargs):
        calls["fit"] += 1
        if calls["fit"] == 3:
            raise Interrupted(2)
        return fit(self, *args, **kwargs)

    real_split = tune_module.make_split

    def counted_split(*args, **kwargs):
        calls["split"] += 1
        return real_split(*args, **kwargs)

    monkeypatch.setattr(tune_module, "make_split", counted_split)
    monkeypatch.setattr(cls, "fit", interrupted_on_third_fit)
    out = tmp_path / "cooccur"
    with pytest.raises(Interrupted):
        tune("cooccur", tiny_store, out, trials=4, progress=False)
    assert not out.exists() and (work_dir(out) / STUDY_FILE).is_file()
    study = optuna.load_study(study_name=tune_module.STUDY_NAME, storage=f"sqlite:///{work_dir(out) / STUDY_FILE}")
    before = [(t.number, t.params, t.value) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(before) == 2

    monkeypatch.setattr(cls, "fit", fit)
    result = tune("cooccur", tiny_store, out, trials=4, progress=False)
    assert result.resumed == 2 and result.trials == 4
    assert calls["split"] == 1  # the validation split was reused, not cut again
    trials = result.search["trials"]
    assert [(t["number"], t["params"], t["value"]) for t in trials[:2]] == [(n, p, round(v, 6)) for n, p, v in before]
    assert [t["number"] for t in trials] == [0, 1, 3, 4]  # trial 2 was the interrupted one
    assert trials[2]["params"] != trials[1]["params"]  # the resumed sampler does not redraw the same trials
    assert load_model(out).name == "cooccur"


def test_no_trial_sees_held_out_playlists(tiny_store, tmp_path, monkeypatch):
    split = load_split(make_split(tiny_store, tmp_path / "split", per_category=3, seed=5).path)
    held_out = set(split.challenge.pids.tolist())
    train_pids = set(split.train_store().pids.tolist())
    assert held_out and not held_out & train_pids
    cls = get_model_class("cooccur")
    fit = cls.fit
    fitted_on, scored = [], []

    def spy_fit(self, store, *args, **kwargs):
        fitted_on.append(set(store.pids.tolist()))
        return fit(self, store, *args, **kwargs)

    score = tune_module.Validation.score

    def spy_score(self, model, report=None):
        scored.append(set(self.pids.tolist()))
        return score(self, model, report)

    monkeypatch.setattr(cls, "fit", spy_fit)
    monkeypatch.setattr(tune_module.Validation, "score", spy_score)
    out = tmp_path / "tuned"
    tune("cooccur", split.train_path, out, trials=3, progress=False)
    assert len(fitted_on) == 4 and len(scored) == 3  # 3 trials, then the winner on all of SPLIT/train
    for pids in fitted_on + scored:
        assert not pids & held_out and pids <= train_pids
    assert fitted_on[-1] == train_pids
    for trial_pids, validation_pids in zip(fitted_on, scored):
        assert not trial_pids & validation_pids  # a trial is scored on playlists it did not train on
    assert load_model(out).store_info["fingerprint"] == split.train_store().fingerprint


def test_validation_split_is_sized_to_the_store(tiny_store, genre_store):
    per_category = validation_per_category(tiny_store)
    assert 1 <= per_category <= tune_module.MIN_PER_CATEGORY
    with pytest.raises(InputError, match="cannot fill even one validation playlist"):
        validation_per_category(genre_store)  # its playlists are all shorter than categories 9/10 need


def test_cli_errors(cli, tiny_store, tmp_path):
    out = str(tmp_path / "m")
    for args, message in (
        (["tune", "cooccur", "--metric", "map"], "--metric 'map' is not one of"),
        (["tune", "cooccur", "--trials", "0"], "--trials must be at least 1"),
        (["tune", "nosuch"], "unknown model 'nosuch'"),
        (["tune", "cooccur", "--space", str(tmp_path / "missing.json")], "missing.json"),
    ):
        result = cli(*args, "--store", str(tiny_store.path), "--out", out, "--no-progress")
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()
    json.dumps(search_space("als")["factors"].as_json())  # spaces are JSON (they go into config.json)
