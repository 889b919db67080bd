"""`segue split / evaluate / submit / verify / score` driven in-process through the Typer app."""

import gzip
import math

import pytest
from typer.testing import CliRunner

import segue.cli  # noqa: F401  (registers every command)
from segue.commands import app
from segue.data.store import build_store
from segue.data.synth import generate_playlists
from segue.io import read_json
from segue.models.base import get_model_class

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    build_store(generate_playlists(300, seed=4), root / "store")
    result = runner.invoke(app, ["split", str(root / "store"), "--out", str(root / "split"),
                                 "--per-category", "3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "30 test playlists" in result.output
    from segue.data.store import Store

    train = Store.open(root / "split" / "train")
    get_model_class("popular")().fit(train).save(root / "pop")
    get_model_class("popular")(get_model_class("popular").Config(count="entries")).fit(train).save(root / "pop2")
    return root


def test_split_too_small_fails_with_the_allowed_size(workdir):
    result = runner.invoke(app, ["split", str(workdir / "store"), "--out", str(workdir / "nope"),
                                 "--per-category", "500"])
    assert result.exit_code == 1
    assert "error:" in result.output and "at most --per-category" in result.output


@pytest.fixture(scope="module")
def evaluated(workdir):
    """`segue evaluate pop pop2 --json --report` once; (exit result, JSON results, report base path)."""
    out = workdir / "res.json"
    report = workdir / "report" / "eval"
    result = runner.invoke(app, ["evaluate", str(workdir / "pop"), str(workdir / "pop2"), "--split",
                                 str(workdir / "split"), "--json", str(out), "--report", str(report),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    return result, read_json(out), report


def test_evaluate_prints_a_table_and_writes_json_and_report(evaluated):
    result, data, report = evaluated
    assert set(data) == {"pop", "pop2"}
    overall = data["pop"]["overall"]
    assert set(overall) == {"r_precision", "r_precision_artist", "ndcg", "ndcg_rules_page", "clicks", "recall_500", "n"}
    assert overall["n"] == 30 and 0 <= overall["r_precision"] <= 1
    assert set(data["pop"]["per_category"]) == {str(c) for c in range(1, 11)}
    # The printed row carries the JSON's figures, and the table says which NDCG it shows.
    out = " ".join(result.output.split())
    for key in ("pop", "pop2"):
        o = data[key]["overall"]
        assert f"{o['r_precision']:.4f}" in out and f"{o['ndcg']:.4f}" in out and f"{o['clicks']:.2f}" in out
    assert "NDCG is Spotify's challenge definition" in out and "R@10" in out
    for ext in (".json", ".md", ".png"):
        assert (report.parent / f"eval{ext}").stat().st_size > 0
    md = (report.parent / "eval.md").read_text()
    pop_row = next(line for line in md.splitlines() if line.startswith("| pop |"))
    assert f"{overall['r_precision']:.4f}" in pop_row and f"{overall['ndcg']:.4f}" in pop_row
    assert "NDCG is Spotify's challenge definition" in md


def test_evaluate_compares_later_models_with_the_first_on_the_same_playlists(evaluated):
    result, data, report = evaluated
    assert "paired" not in data["pop"]
    paired = data["pop2"]["paired"]
    assert paired["against"] == "pop"
    for metric in ("r_precision", "ndcg", "clicks"):
        diff = paired[metric]
        assert diff["diff"] == pytest.approx(data["pop2"]["overall"][metric] - data["pop"]["overall"][metric])
        assert diff["ci95"][0] <= diff["diff"] <= diff["ci95"][1] and diff["n"] == 30
    out = " ".join(result.output.split())
    assert "difference from pop, paired 95% bootstrap CI" in out
    assert f"{paired['ndcg']['diff']:+.4f} [{paired['ndcg']['ci95'][0]:+.4f}" in out
    assert "difference from pop" in (report.parent / "eval.md").read_text()


@pytest.fixture(scope="module")
def submission(workdir):
    """A valid plain-text submission of the `pop` model for the split's challenge set."""
    path = workdir / "fixture_sub.csv"
    made = runner.invoke(app, ["submit", str(workdir / "pop"), "--challenge", str(workdir / "split" / "challenge_set.json"),
                               "--out", str(path), "--no-progress"])
    assert made.exit_code == 0, made.output
    return path


def spotify_ndcg(truth: list[str], recs: list[str]) -> float:
    """The challenge's NDCG for one playlist, from its definition (first 500, repeats dropped, IDCG over |G|)."""
    g, distinct = set(truth), list(dict.fromkeys(recs[:500]))
    dcg = sum(1 / math.log2(i + 2) for i, t in enumerate(distinct) if t in g)
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(len(g), 500)))


def test_evaluate_missing_model_is_a_clean_error(workdir):
    result = runner.invoke(app, ["evaluate", str(workdir / "nothing"), "--split", str(workdir / "split")])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["sub.csv.gz", "sub.csv"])
def test_submit_verify_and_score(workdir, evaluated, name):
    sub = workdir / name
    challenge = workdir / "split" / "challenge_set.json"
    result = runner.invoke(app, ["submit", str(workdir / "pop"), "--challenge", str(challenge), "--out", str(sub),
                                 "--team", "t", "--email", "t@x.org", "--no-progress"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify", str(sub), "--challenge", str(challenge)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    score_json = workdir / f"{name}.score.json"
    result = runner.invoke(app, ["score", str(sub), "--answers", str(workdir / "split" / "answers.json"),
                                 "--challenge", str(challenge), "--store", str(workdir / "split" / "train"),
                                 "--json", str(score_json)])
    assert result.exit_code == 0, result.output
    assert "NDCG is Spotify's challenge definition" in " ".join(result.output.split())
    scored = read_json(score_json)["overall"]
    evaluated_pop = evaluated[1]["pop"]["overall"]
    for metric in ("r_precision", "ndcg", "clicks", "recall_500"):
        assert scored[metric] == pytest.approx(evaluated_pop[metric]), metric
    # overall.ndcg is Spotify's definition, recomputed here from the file and the answers.
    opener = gzip.open if name.endswith(".gz") else open
    with opener(sub, "rt", encoding="utf-8") as fh:
        rows = [line.strip().split(",") for line in fh if line.strip() and not line.startswith("team_info")]
    answers = read_json(workdir / "split" / "answers.json")
    expected = [spotify_ndcg(answers[row[0]], row[1:]) for row in rows]
    assert len(expected) == 30 and scored["ndcg"] == pytest.approx(sum(expected) / len(expected), abs=1e-12)


def test_verify_lists_failures_with_line_numbers_and_exits_non_zero(workdir, submission, tmp_path):
    challenge = workdir / "split" / "challenge_set.json"
    lines = submission.read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:-1])
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:-1]) + "\n")
    result = runner.invoke(app, ["verify", str(bad), "--challenge", str(challenge)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "499 tracks" in result.output and "missing" in result.output


def test_an_empty_challenge_set_is_refused_by_submit_verify_and_score(workdir, submission, tmp_path):
    empty = tmp_path / "challenge_set.json"
    empty.write_text('{"date": "x", "version": "v1", "playlists": []}')
    sub = submission
    commands = [
        ["submit", str(workdir / "pop"), "--challenge", str(empty), "--out", str(tmp_path / "s.csv"), "--no-progress"],
        ["verify", str(sub), "--challenge", str(empty)],
        ["score", str(sub), "--answers", str(workdir / "split" / "answers.json"), "--challenge", str(empty)],
    ]
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args[0], result.output)
        assert "the challenge set has no playlists" in " ".join(result.output.split()), args[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "s.csv").exists()


def test_score_refuses_garbage_and_warns_on_a_file_that_fails_verify(workdir, submission, tmp_path):
    answers = str(workdir / "split" / "answers.json")
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("hello,world\nthis is not,a submission\n")
    result = runner.invoke(app, ["score", str(garbage), "--answers", answers])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "fails `segue verify`" in out and "nothing to score" in out
    assert "no team_info line" in out
    # A real submission cut to 10 tracks a line: scored, but with a loud warning saying why it fails.
    lines = submission.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join([lines[0]] + [",".join(line.split(",")[:11]) for line in lines[1:]]) + "\n")
    result = runner.invoke(app, ["score", str(short), "--answers", answers, "--json", str(tmp_path / "s.json")])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "warning:" in out and "fails 30 check(s) of `segue verify`" in out and "10 tracks, expected exactly 500" in out
    assert read_json(tmp_path / "s.json")["info"]["verify_failures"] == 30


def test_a_model_trained_on_the_full_store_is_refused_unless_forced(workdir, tmp_path):
    from segue.data.store import Store

    leaky = tmp_path / "leaky"
    get_model_class("popular")().fit(Store.open(workdir / "store")).save(leaky)
    split = str(workdir / "split")
    challenge = str(workdir / "split" / "challenge_set.json")
    refused = runner.invoke(app, ["evaluate", str(leaky), "--split", split, "--no-progress"])
    out = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "not on the split's training store" in out and "--force" in out
    forced = runner.invoke(app, ["evaluate", str(leaky), "--split", split, "--no-progress", "--force"])
    out = " ".join(forced.output.split())
    assert forced.exit_code == 0 and "warning:" in out and "answers" in out and "R-prec" in out
    refused = runner.invoke(app, ["submit", str(leaky), "--challenge", challenge, "--out", str(tmp_path / "s.csv"),
                                  "--no-progress"])
    assert refused.exit_code == 1 and "not on the split's training store" in " ".join(refused.output.split())
    assert not (tmp_path / "s.csv").exists()
    forced = runner.invoke(app, ["submit", str(leaky), "--challenge", challenge, "--out", str(tmp_path / "s.csv"),
                                 "--no-progress", "--force"])
    assert forced.exit_code == 0 and "warning:" in forced.output and (tmp_path / "s.csv").exists()
