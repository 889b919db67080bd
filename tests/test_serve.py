"""segue serve: every endpoint and every kind of bad input, through an in-process client; the batcher; the CLI."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from model_suite import FAST_OVERRIDES

from segue.config import apply_overrides
from segue.data.store import build_store
from segue.errors import InputError
from segue.models.base import available_models, get_model_class
from segue.serve.app import MAX_BODY_BYTES, MAX_SEEDS, create_app
from segue.serve.service import Service

SRC = Path(__file__).resolve().parents[1] / "src"


def train(name: str, store, out: Path) -> Path:
    cls = get_model_class(name)
    cls(apply_overrides(cls.Config(), FAST_OVERRIDES.get(name, {}))).fit(store).save(out)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory, _synth_cache):
    """A cooccur model on 300 generated playlists, served in-process."""
    root = tmp_path_factory.mktemp("serve")
    store = build_store(_synth_cache, root / "store")
    service = Service.load(train("cooccur", store, root / "cooccur"))
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client, service


def assert_error(response, status: int, *words: str) -> str:
    """The one error shape, the status, a message naming what to fix, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message = body["error"]["message"]
    for word in words:
        assert word.lower() in message.lower(), message
    assert "Traceback" not in response.text and 'File "' not in response.text
    return message


# ---- endpoints ------------------------------------------------------------------------------
def test_health_and_model(served):
    client, service = served
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model")
    assert info.status_code == 200
    body = info.json()
    assert body["model"] == "cooccur" and body["n_tracks"] == service.store.n_tracks
    assert body["store"]["fingerprint"] == service.store.fingerprint
    assert str(service.store.path) not in info.text  # no server paths in answers


def test_recommend_matches_the_model_excludes_seeds_and_reports_unknown(served):
    client, service = served
    store = service.store
    seeds = list(store.playlist_tracks(3)[:5])
    uris = [store.track_uris[i] for i in seeds]
    response = client.post("/v1/recommend", json={"tracks": [*uris, "spotify:track:missing", "spotify:track:missing"],
                                                  "title": store.names[3], "k": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "cooccur" and body["unknown_tracks"] == ["spotify:track:missing"]
    got = [t["uri"] for t in body["tracks"]]
    assert len(got) == 30 and not set(got) & set(uris)
    ids, scores = service.model.recommend([np.array(seeds, np.int32)], k=30, titles=[store.names[3]])
    assert got == [store.track_uris[i] for i in ids[0]]
    assert np.allclose([t["score"] for t in body["tracks"]], scores[0])
    first = body["tracks"][0]
    info = store.track_info([ids[0][0]])[0]
    assert (first["name"], first["artist"], first["album"], first["duration_ms"]) == (
        info["track_name"], info["artist_name"], info["album_name"], info["duration_ms"])
    assert "why" not in first  # only when asked


def test_recommend_from_a_title_alone_and_from_nothing(served):
    client, _ = served
    for body in ({"title": "christmas"}, {}, {"tracks": ["spotify:track:unknown"]}):
        response = client.post("/v1/recommend", json=body)
        assert response.status_code == 200, response.text
        assert len(response.json()["tracks"]) == 20


def test_why_hints_are_true(served):
    client, service = served
    store = service.store
    seeds = list(dict.fromkeys(store.playlist_tracks(10).tolist()))[:6]
    body = client.post("/v1/recommend", json={"tracks": [store.track_uris[i] for i in seeds], "k": 100,
                                              "explain": True}).json()
    playlists_of = {}
    for row in range(store.n_playlists):
        for t in set(store.playlist_tracks(row).tolist()):
            playlists_of.setdefault(t, set()).add(row)
    reasons = set()
    for track in body["tracks"]:
        why = track["why"]
        if why is None:
            continue
        rec, seed = store.track_id(track["uri"]), store.track_id(why["seed"])
        assert seed in seeds
        reasons.add(why["reason"])
        if why["reason"] == "same_album":
            assert store.track_album[rec] == store.track_album[seed]
        elif why["reason"] == "same_artist":
            assert store.track_artist[rec] == store.track_artist[seed]
        else:
            shared = {s: len(playlists_of[rec] & playlists_of[s]) for s in seeds}
            assert why["playlists"] == shared[seed] == max(shared.values()) > 0
    assert "together" in reasons


def test_track_and_playlist(served):
    client, service = served
    store = service.store
    uri = store.track_uris[7]
    track = client.get(f"/v1/tracks/{uri}").json()
    assert track["uri"] == uri and track["name"] == store.track_info([7])[0]["track_name"]
    pid = int(store.pids[4])
    playlist = client.get(f"/v1/playlists/{pid}").json()
    assert playlist["pid"] == pid and playlist["name"] == store.names[4]
    assert [t["uri"] for t in playlist["tracks"]] == [store.track_uris[i] for i in store.playlist_tracks(4)]
    assert_error(client.get("/v1/tracks/spotify:track:nope"), 404, "spotify:track:nope")
    assert_error(client.get("/v1/playlists/987654"), 404, "987654")
    assert_error(client.get("/v1/playlists/-1"), 422, "pid")
    assert_error(client.get("/v1/playlists/abc"), 422, "pid")


def test_search_endpoint(served):
    client, service = served
    name = service.store.track_info([0])[0]["track_name"]
    word = name.split()[0]
    body = client.get("/v1/tracks/search", params={"q": word[:3].upper(), "limit": 5}).json()
    assert 0 < len(body["tracks"]) <= 5 and body["query"] == word[:3].upper()
    counts = [t["occurrences"] for t in body["tracks"]]
    assert counts == sorted(counts, reverse=True)
    assert client.get("/v1/tracks/search", params={"q": "!!!"}).json()["tracks"] == []
    assert_error(client.get("/v1/tracks/search"), 422, "q")
    assert_error(client.get("/v1/tracks/search", params={"q": ""}), 422, "q")
    assert_error(client.get("/v1/tracks/search", params={"q": "a", "limit": 0}), 422, "limit")
    assert_error(client.get("/v1/tracks/search", params={"q": "a", "limit": 51}), 422, "limit")
    assert_error(client.get("/v1/tracks/search", params={"q": "a" * 301}), 422, "q")


# ---- bad input ------------------------------------------------------------------------------
BAD_BODIES = [
    (b"{", 400, ["not valid json"]),
    (b'{"tracks": [}', 400, ["not valid json"]),
    (b"", 422, ["empty"]),
    (b"[]", 422, ["object"]),
    (b'"tracks"', 422, ["object"]),
    (b'{"k": 0}', 422, ["k", "greater than or equal to 1"]),
    (b'{"k": 501}', 422, ["k", "less than or equal to 500"]),
    (b'{"k": "20"}', 422, ["k", "integer"]),
    (b'{"k": 2.5}', 422, ["k", "integer"]),
    (b'{"k": null}', 422, ["k"]),
    (b'{"tracks": "spotify:track:x"}', 422, ["tracks", "list"]),
    (b'{"tracks": [1, 2]}', 422, ["tracks.0", "string"]),
    (b'{"tracks": [""]}', 422, ["tracks.0"]),
    (b'{"title": 5}', 422, ["title", "string"]),
    (b'{"explain": "yes"}', 422, ["explain"]),
    (b'{"trakcs": []}', 422, ["trakcs", "not permitted"]),
]


@pytest.mark.parametrize("body, status, words", BAD_BODIES, ids=[b.decode() or "empty" for b, _, _ in BAD_BODIES])
def test_bad_recommend_bodies(served, body, status, words):
    client, _ = served
    response = client.post("/v1/recommend", content=body, headers={"content-type": "application/json"})
    assert_error(response, status, *words)


def test_too_many_seeds_and_too_large_bodies(served):
    client, _ = served
    many = {"tracks": [f"spotify:track:{i:022d}" for i in range(10_000)]}
    assert_error(client.post("/v1/recommend", json=many), 422, "tracks", str(MAX_SEEDS))
    huge = b'{"title": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    assert_error(client.post("/v1/recommend", content=huge, headers={"content-type": "application/json"}),
                 413, "larger than")

    def chunks():  # no Content-Length: the limit counts the bytes as they stream in
        yield b'{"title": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    assert_error(client.post("/v1/recommend", content=chunks(), headers={"content-type": "application/json"}),
                 413, "larger than")
    assert_error(client.post("/v1/recommend", content=b"{}", headers={"content-length": "abc"}), 400,
                 "content-length")


def test_unknown_routes_and_methods(served):
    client, _ = served
    assert_error(client.get("/v1/nope"), 404, "/v1/nope", "/docs")
    assert_error(client.get("/v1/recommend"), 405, "GET", "POST")
    assert_error(client.delete("/v1/model"), 405, "DELETE")


def test_internal_errors_are_json_without_traceback(served, monkeypatch):
    client, service = served

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service._batcher, "recommend", broken)  # what the batcher calls: model.recommend
    message = assert_error(client.post("/v1/recommend", json={"tracks": []}), 500, "internal error")
    assert "secret" not in message


# ---- page, static files, headers --------------------------------------------------------------
def test_page_static_files_and_headers(served):
    client, _ = served
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    for escape in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e/%2e%2e/io.py",
                   "/static//etc/passwd", "/static/%2fetc%2fpasswd"):
        response = client.get(escape)
        assert response.status_code == 404 and "import" not in response.text, escape
    assert "content-security-policy" in client.get("/v1/nope").headers


def test_docs_are_served_offline(served):
    client, _ = served
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/recommend", "/v1/tracks/search", "/v1/tracks/{uri}", "/v1/playlists/{pid}", "/healthz",
            "/v1/model"} <= set(schema["paths"])
    responses = schema["paths"]["/v1/recommend"]["post"]["responses"]
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


# ---- batching and models ----------------------------------------------------------------------
def test_concurrent_requests_are_batched_and_answer_like_single_ones(served):
    _, service = served
    store = service.store
    playlists = [store.playlist_tracks(r)[:4] for r in range(12)]

    async def all_at_once():
        return await asyncio.gather(*(service.recommend([store.track_uris[i] for i in p], None, 10 + r)
                                      for r, p in enumerate(playlists)))

    answers = asyncio.run(all_at_once())
    for r, (p, answer) in enumerate(zip(playlists, answers)):
        ids, _ = service.model.recommend([p], k=10 + r)
        assert [t["uri"] for t in answer.tracks] == [store.track_uris[i] for i in ids[0] if i >= 0]


@pytest.mark.parametrize("name", available_models())
def test_any_model_directory_can_be_served(tmp_path, genre_store, name):
    store = genre_store
    service = Service.load(train(name, store, tmp_path / name), index_path=tmp_path / "index.sqlite")
    with TestClient(create_app(service)) as client:
        body = client.post("/v1/recommend", json={"tracks": store.track_uris[:3], "title": "rock", "k": 7}).json()
        assert body["model"] == name and len(body["tracks"]) == 7
        assert not {t["uri"] for t in body["tracks"]} & set(store.track_uris[:3])


def test_what_the_server_loaded_is_kept_out_of_the_cyclic_collector(tmp_path, genre_store):
    service = Service.load(train("popular", genre_store, tmp_path / "popular"), index_path=tmp_path / "index.sqlite")
    before = gc.get_freeze_count()
    with TestClient(create_app(service)) as client:
        assert gc.get_freeze_count() > before  # a full collection no longer walks the loaded model and store
        assert client.post("/v1/recommend", json={"tracks": genre_store.track_uris[:2], "k": 3}).status_code == 200
    assert gc.get_freeze_count() == 0  # shutdown hands them back


def test_als_served_from_its_approximate_index(tmp_path, genre_store):
    """--ann on: the index is built beside the model once and reused; its answers find the exact ones here (a
    catalogue smaller than the search's reach); models without an index refuse "on"."""
    pytest.importorskip("hnswlib", reason="hnswlib is not installed (pip install -e '.[ann]'; needs a C++ compiler)")
    model_dir = train("als", genre_store, tmp_path / "als")
    service = Service.load(model_dir, index_path=tmp_path / "index.sqlite", ann="on")
    assert service.describe()["approximate"] and (model_dir / "ann-hnsw.bin").is_file()
    built = (model_dir / "ann-hnsw.bin").stat().st_mtime_ns
    seeds = [genre_store.playlist_tracks(r)[:n] for r, n in zip(range(12), [1, 3, 10] * 4)] + [np.zeros(0, np.int32)]
    titles = ["rock", None, "chill"] * 4 + ["rap"]
    ids, _ = service._batcher.recommend(seeds, k=20, titles=titles)
    exact, _ = service.model.recommend(seeds, k=20, titles=titles)
    found = [len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum()) for a, e in zip(ids, exact)]
    assert min(found) >= 0.9 and np.mean(found) >= 0.97
    assert not any(set(a) & set(s) for a, s in zip(ids, seeds))
    again = Service.load(model_dir, index_path=tmp_path / "index.sqlite", ann="on")
    assert again.approximate and (model_dir / "ann-hnsw.bin").stat().st_mtime_ns == built
    assert not Service.load(model_dir, index_path=tmp_path / "index.sqlite", ann="off").approximate
    assert not Service.load(model_dir, index_path=tmp_path / "index.sqlite").approximate  # auto: small catalogue
    with pytest.raises(InputError, match="no approximate index"):
        Service.load(train("popular", genre_store, tmp_path / "popular"), index_path=tmp_path / "i.sqlite", ann="on")


# ---- the command ----------------------------------------------------------------------------
def test_exposure_warning():
    from segue.commands.serve import exposure_warning

    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert "reachable from other machines" in exposure_warning(host)


def test_serve_command_rejects_a_bad_model_dir(cli, tmp_path):
    result = cli("serve", tmp_path / "nothing", "--port", "0")
    assert result.exit_code == 1
    assert "not a segue model directory" in result.output + (result.stderr or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_serves_and_stops_cleanly_on_sigterm(tmp_path, _synth_cache):
    store = build_store(_synth_cache[:100], tmp_path / "store")
    model = train("popular", store, tmp_path / "popular")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "segue", "serve", str(model), "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        body = httpx.post(f"http://127.0.0.1:{port}/v1/recommend", json={"tracks": [store.track_uris[0]]}).json()
        assert len(body["tracks"]) == 20
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # uvicorn finishes the shutdown, then re-raises SIGTERM so the exit status says how the process ended
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err and "Application shutdown complete" in err
    assert "serving popular" in out and "warning" not in err
    assert (tmp_path / "store" / "search-index.sqlite").is_file()
