"""Shared fixtures: tiny generated MPD playlists and an in-process CLI runner."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture(scope="session")
def _synth_cache() -> list[dict]:
    from segue.data.synth import generate_playlists

    return list(generate_playlists(300, seed=7))


@pytest.fixture
def synth_playlists(_synth_cache) -> list[dict]:
    """300 synthetic MPD playlists (pids 0..299), a fresh copy per test so tests may edit them."""
    return copy.deepcopy(_synth_cache)


@pytest.fixture
def cli():
    """Run ``segue ARGS...`` in-process; returns click's Result (``exit_code``, ``output``, ``stderr``)."""
    from typer.testing import CliRunner

    import segue.cli  # noqa: F401  (registers every command on the app)
    from segue.commands import app

    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [str(a) for a in args])

    return run
