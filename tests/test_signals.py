"""Signals and concurrent writers, with real processes (each bounded in time): SIGINT and SIGTERM during
ingest leave the old store and no temp, print one line and exit 130/143; a second writer fails at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
N_FILES = 400  # enough small files that ingest is still parsing when the signal comes


def _segue(*args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC), OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "segue", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True, **kwargs)


def _wait_for(predicate, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def many_files(tmp_path_factory, _synth_cache) -> Path:
    folder = tmp_path_factory.mktemp("many")
    for i in range(N_FILES):
        playlist = dict(_synth_cache[i % len(_synth_cache)], pid=i)
        (folder / f"mpd.slice.{i}-{i}.json").write_text(json.dumps({"info": {}, "playlists": [playlist]}))
    return folder


@pytest.fixture
def old_store(tmp_path, _synth_cache):
    from segue.data.store import build_store

    store = build_store(_synth_cache[:20], tmp_path / "store")
    return store.path, {p.name: p.read_bytes() for p in store.path.iterdir()}


@pytest.mark.parametrize("signum, whole_group", [(signal.SIGINT, True), (signal.SIGTERM, False),
                                                 (signal.SIGTERM, True)],
                         ids=["ctrl-c", "kill", "kill-group"])
def test_a_signal_during_ingest_leaves_the_old_store(signum, whole_group, many_files, old_store, tmp_path):
    path, before = old_store
    process = _segue("ingest", many_files, "--out", path, "--workers", "2", "--no-progress")
    try:
        _wait_for(lambda: any(p.name.startswith(".store.tmp-") for p in tmp_path.iterdir()), process)
        time.sleep(0.1)  # the parsing workers are running now
        assert process.poll() is None
        os.killpg(process.pid, signum) if whole_group else process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err
    assert err.strip() == f"interrupted; {path} unchanged"
    assert "Traceback" not in err and "worker" not in err
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temp, backup or lock left


def test_a_second_ingest_into_the_same_store_fails_at_once(many_files, old_store, tmp_path, _synth_cache):
    path, _ = old_store
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"info": {}, "playlists": _synth_cache[:5]}))
    first = _segue("ingest", many_files, "--out", path, "--workers", "1", "--no-progress")
    try:
        _wait_for(lambda: (tmp_path / ".store.lock").exists(), first)
        second = _segue("ingest", small, "--out", path, "--no-progress")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert "".join(err.split()).startswith(f"error:{path}isbeingwrittenbysegue(pid{first.pid}:")
        out, err = first.communicate(timeout=120)
    finally:
        for process in (first,):
            if process.poll() is None:
                process.kill()
    assert first.returncode == 0, err
    from segue.data.store import Store

    assert Store.open(path).n_playlists == N_FILES  # the first writer's store, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.json", "store"]
