"""Global popularity: every playlist gets the same ranking, most common tracks first.

The baseline every other model is measured against, and the last resort when nothing is known about a
playlist. Scores are ``log1p(count)``, where count is the number of training playlists holding the track
(``count="playlists"``, the default) or its number of entries including repeats (``count="entries"``).
Tracks that never occur in training score -inf and are never recommended.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from segue.config import setting
from segue.data.store import Store
from segue.models._common import POPULARITY_KINDS, load_npz, save_npz, track_popularity
from segue.models.base import Candidates, ModelConfig, Recommender, register


@dataclasses.dataclass(frozen=True)
class PopularConfig(ModelConfig):
    # "playlists": distinct playlists holding the track; "entries": with repeats
    count: str = setting("playlists", choices=POPULARITY_KINDS)


# `segue tune`'s search space (format: segue.evaluate.tune)
SEARCH_SPACE = {"count": {"choices": list(POPULARITY_KINDS)}}


def popularity_scores(counts: np.ndarray) -> np.ndarray:
    """(n_tracks,) float32 ``log1p(count)``, -inf where the count is zero."""
    scores = np.log1p(counts).astype(np.float32)
    scores[counts <= 0] = -np.inf
    return scores


@register
class Popular(Recommender):
    name = "popular"
    Config = PopularConfig
    search_space = SEARCH_SPACE
    uses_title_fallback = False

    def _fit(self, train: Store, progress: bool) -> None:
        self.counts = track_popularity(train, self.config.count)  # (n_tracks,)
        self.scores = popularity_scores(self.counts)
        self._order = None  # background_order(), rebuilt on first use
        self.fit_info = {"n_playlists": train.n_playlists, "n_seen_tracks": int((self.counts > 0).sum())}

    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles) -> np.ndarray:
        return np.tile(self.scores, (len(indptr) - 1, 1))  # (b, n_tracks)

    @property
    def popularity(self) -> np.ndarray:  # what background_order() sorts by: the order of the scores
        return self.counts

    def _candidates(self, indptr: np.ndarray, indices: np.ndarray, titles) -> Candidates:
        """Every row is the background alone: the head of the popularity order answers it exactly."""
        order, group_end = self.background_order()
        empty = np.zeros(0, dtype=np.int64)
        return Candidates(empty, empty, order, group_end, lambda rows, tracks: self.scores[tracks])

    def _save_arrays(self, directory: Path) -> None:
        save_npz(directory / "arrays.npz", counts=self.counts)

    def _load_arrays(self, directory: Path) -> None:
        self.counts = load_npz(directory / "arrays.npz")["counts"]
        if self.counts.shape != (self.n_tracks,):
            raise ValueError(f"counts has shape {self.counts.shape}, expected ({self.n_tracks},)")
        self.scores = popularity_scores(self.counts)
        self._order = None
