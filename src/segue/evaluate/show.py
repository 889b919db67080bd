"""The seed write-up's show_recommendations as a library: one playlist, its first songs as seeds, the
model's top-k, and how each recommendation relates to the playlist (`segue show` renders it).

The playlist may come from another store than the model's (e.g. a held-out playlist of a split's full
store); songs are matched between the two by URI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segue.data.mpd import normalize_title
from segue.data.store import Store, map_track_ids
from segue.errors import NotFoundError

SHOW_SEEDS = 20      # the write-up feeds songs 1-20 ...
SHOW_TARGETS = 10    # ... and its ten training sets target songs 21-30

TARGET, LATER, SAME_ARTIST, OTHER = "target", "later", "same artist", ""


def confidence(model, seeds: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The model's own confidence when it has one (meanvar: softmax probability), else the top-k scores
    shifted to be >= 0 and divided by their sum."""
    hook = getattr(model, "confidence", None)
    if callable(hook):
        return np.asarray(hook(seeds, ids), dtype=np.float64)
    finite = np.where(np.isfinite(scores), scores, np.nan).astype(np.float64)
    if np.all(np.isnan(finite)):
        return np.zeros(len(scores))
    shifted = finite - min(0.0, float(np.nanmin(finite)))
    total = float(np.nansum(shifted))
    return np.nan_to_num(shifted / total if total > 0 else shifted)


def find_playlist(lookup: Store, model_store: Store, text: str) -> int:
    """Row of the first playlist with 30+ songs whose normalised title contains ``text``; playlists
    absent from the model's training store (held out) come first."""
    needle = normalize_title(text)
    lengths = lookup.playlist_lengths()
    rows = np.asarray([r for r, name in enumerate(lookup.names)
                       if lengths[r] >= SHOW_SEEDS + SHOW_TARGETS and needle in normalize_title(name)], dtype=np.int64)
    if not len(rows):
        raise NotFoundError(f"no playlist of {SHOW_SEEDS + SHOW_TARGETS}+ songs in {lookup.path} has a title "
                            f"containing {text!r}; pass --pid instead.")
    if model_store.path != lookup.path:
        trained = np.isin(lookup.pids[rows], model_store.pids)
        rows = np.concatenate([rows[~trained], rows[trained]])
    return int(rows[0])


@dataclass
class Shown:
    """What `segue show` prints: ids are ``lookup`` store ids (-1: a recommendation it does not know)."""

    pid: int
    title: str | None
    tracks: np.ndarray          # the whole playlist
    seeds: np.ndarray           # its first SHOW_SEEDS songs
    targets: np.ndarray         # songs SHOW_SEEDS+1 .. SHOW_SEEDS+SHOW_TARGETS
    unknown_seeds: int          # seeds the model's store does not know (left out)
    recommended: np.ndarray     # lookup ids of the top-k
    model_ids: np.ndarray       # the same in the model's store
    confidence: np.ndarray
    match: list[str]            # TARGET, LATER, SAME_ARTIST or OTHER per recommendation

    def count(self, kind: str) -> int:
        return sum(m == kind for m in self.match)


def show_playlist(model, model_store: Store, lookup: Store, row: int, k: int) -> Shown:
    """The model's top ``k`` for the first songs of ``lookup``'s playlist at ``row``, each matched against
    the playlist: a target (songs 21-30), a later song, a song by one of its artists, or none."""
    tracks = lookup.playlist_tracks(row)
    title = lookup.names[row]
    seeds, targets = tracks[:SHOW_SEEDS], tracks[SHOW_SEEDS : SHOW_SEEDS + SHOW_TARGETS]
    model_seeds = map_track_ids(seeds, lookup.ids_in(model_store))
    unknown = int((model_seeds < 0).sum())
    model_seeds = model_seeds[model_seeds >= 0]
    ids, scores = model.recommend([model_seeds], k=k, titles=[title])
    keep = ids[0] >= 0
    model_ids, scores = ids[0][keep], scores[0][keep]
    recommended = map_track_ids(model_ids, model_store.ids_in(lookup))
    artists = lookup.track_artist
    playlist_artists = set(artists[tracks].tolist()) - {-1}
    target_set, later_set = set(targets.tolist()), set(tracks[SHOW_SEEDS:].tolist())
    match = [TARGET if t in target_set else LATER if t in later_set
             else SAME_ARTIST if t >= 0 and artists[t] in playlist_artists else OTHER for t in recommended.tolist()]
    return Shown(pid=int(lookup.pids[row]), title=title, tracks=tracks, seeds=seeds, targets=targets,
                 unknown_seeds=unknown, recommended=recommended, model_ids=model_ids,
                 confidence=confidence(model, model_seeds, model_ids, scores), match=match)
