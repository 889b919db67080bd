"""What ``segue serve`` serves, without the HTTP: one model and its store, loaded once, answering in milliseconds.

* Recommendations go through :class:`RecommendBatcher`: one worker thread takes every request that is waiting
  (up to ``max_batch``) and scores them with a single ``model.recommend`` call, so concurrent clients share one
  dense score block and one matrix product instead of contending for the cores; a lone request waits for nothing.
* Track display data is taken column-wise from the store's Arrow table (no Python object per catalogue track).
* "Why" hints come from the store, not the model, so every model gets them: a recommended track on the same album
  or by the same artist as a seed, or the seed it shares the most training playlists with (one sparse product of
  the recommended tracks' and the seeds' playlist sets, over the tracks x playlists matrix built at start-up).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import queue
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from segue import __version__
from segue.data.store import Store
from segue.errors import InputError, NotFoundError
from segue.models.base import Recommender, open_model_and_store
from segue.serve.search import SearchIndex

log = logging.getLogger(__name__)

# API field <- store column
TRACK_FIELDS = {
    "uri": "track_uri", "name": "track_name", "artist": "artist_name", "album": "album_name",
    "artist_uri": "artist_uri", "album_uri": "album_uri", "duration_ms": "duration_ms", "occurrences": "count",
}
MAX_BATCH = 16  # requests scored together; at 2.26M tracks a dense block of 16 rows is 145 MB
ANN_CHOICES = ("auto", "on", "off")
# --ann auto serves from the model's approximate index (where it has one) from this catalogue size on: above it
# an exact als answer takes more than ~30 ms of CPU (its product over every track is memory-bound). Opt-in
# (the default is off): at 1M generated songs the index's recall@500 was 0.71 (min 0.00), not yet understood.
ANN_AUTO_TRACKS = 1_000_000
EXPLAIN_SEEDS = 50  # "why" hints look at the most recent seeds only: bounded work for long playlists


class RecommendBatcher:
    """Scores the requests that arrive together in one ``model.recommend`` call, on one worker thread."""

    def __init__(self, recommend, max_batch: int = MAX_BATCH) -> None:
        self.recommend = recommend  # model.recommend, or the model's approximate one
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, seeds: np.ndarray, title: str | None, k: int) -> concurrent.futures.Future:
        """A future of ``(ids, scores)`` for one playlist (ids -1 / scores -inf where the model ran out)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="segue-recommend", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((seeds, title, k, future))
        return future

    def _run(self) -> None:
        # one BLAS (and torch) thread: a request's products are small (the pruned path scores a few percent of
        # the songs), where a second thread only spins, and concurrent requests are batched instead
        with threadpool_limits(1, "blas"):
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
            self._loop()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch and batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None
            # drop requests whose client went away (their futures were cancelled)
            live = [item for item in batch if item is not None and item[3].set_running_or_notify_cancel()]
            if live:
                self._score(live)
            if stop:
                return

    def _score(self, batch: list) -> None:
        k = max(item[2] for item in batch)
        try:
            ids, scores = self.recommend([item[0] for item in batch], k=k, titles=[item[1] for item in batch])
        except BaseException as exc:  # every waiting request gets the error (the app turns it into a 500)
            for item in batch:
                item[3].set_exception(exc)
            return
        for row, (_, _, k_row, future) in enumerate(batch):
            future.set_result((ids[row, :k_row], scores[row, :k_row]))

    def close(self) -> None:
        """Finish the requests already queued, then stop the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()


def ann_directory(model_dir: Path, model: Recommender) -> Path:
    """Where a model's approximate index is kept: its own directory when writable, else the user's cache."""
    if os.access(model_dir, os.W_OK):
        return model_dir
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "segue" / "ann" / str(model.model_id)


@dataclasses.dataclass
class Recommendations:
    tracks: list[dict]
    unknown_tracks: list[str]


class Service:
    """A model, its store and the store's search index, with the answers the API gives."""

    def __init__(self, model: Recommender, store: Store, search: SearchIndex, max_batch: int = MAX_BATCH,
                 approximate=None) -> None:
        self.model = model
        self.store = store
        self.search_index = search
        self.approximate = approximate is not None
        self._display = store.tracks.select(list(TRACK_FIELDS.values()))
        self._batcher = RecommendBatcher(approximate or model.recommend, max_batch)
        # tracks x playlists (binary): which training playlists hold each track, for the "why" hints
        self._track_playlists = store.csr(binary=True).T.tocsr()
        # build the store's URI and pid lookups now, not on the first request
        store.track_ids([])
        if store.n_playlists:
            store.row_of_pid(int(store.pids[0]))

    @classmethod
    def load(cls, model_dir: str | os.PathLike, store_path: str | os.PathLike | None = None,
             index_path: str | os.PathLike | None = None, progress: bool = False,
             max_batch: int = MAX_BATCH, ann: str = "off") -> "Service":
        """``ann``: serve from the model's approximate index ("on"), never ("off"), or from ANN_AUTO_TRACKS
        tracks on ("auto"; exact for models without one)."""
        if ann not in ANN_CHOICES:
            raise InputError(f"--ann must be one of {', '.join(ANN_CHOICES)} (got {ann!r}).")
        model, store = open_model_and_store(model_dir, store_path)
        approximate = None
        if ann == "on" or (ann == "auto" and model.n_tracks >= ANN_AUTO_TRACKS):
            try:
                approximate = model.approximate_recommender(ann_directory(Path(model_dir), model), progress=progress)
            except InputError as exc:
                if ann == "on":
                    raise
                log.warning("serving exact recommendations: %s", exc)
            if approximate is None and ann == "on":
                raise InputError(f"--ann on: the {model.name} model has no approximate index (als has one); "
                                 "use --ann auto or off.")
        search = SearchIndex.open(store, index_path, progress=progress)
        return cls(model, store, search, max_batch, approximate)

    def close(self) -> None:
        self._batcher.close()

    # ---- tracks and playlists ----------------------------------------------------------------
    def tracks(self, ids: np.ndarray) -> list[dict]:
        """API track objects for track ids (all valid), in order."""
        columns = self._display.take(pa.array(np.asarray(ids, dtype=np.int64))).to_pydict()
        values = [columns[column] for column in TRACK_FIELDS.values()]
        return [dict(zip(TRACK_FIELDS, row)) for row in zip(*values)]

    def track(self, uri: str) -> dict:
        ids = self.store.track_ids([uri])
        if ids[0] < 0:
            raise NotFoundError(f"no track {uri!r} in this store; find URIs with /v1/tracks/search.")
        return self.tracks(ids)[0]

    def playlist(self, pid: int) -> dict:
        try:
            row = self.store.row_of_pid(pid)
        except NotFoundError:
            raise NotFoundError(f"no playlist with pid {pid} in this store.") from None
        meta = self.store.playlist_meta.slice(row, 1).to_pylist()[0]
        return {"pid": int(meta["pid"]), "name": meta["name"], "description": meta["description"],
                "num_followers": meta["num_followers"], "tracks": self.tracks(self.store.playlist_tracks(row))}

    def search(self, query: str, limit: int) -> list[dict]:
        return self.tracks(self.search_index.search(query, limit))

    def describe(self) -> dict:
        info = self.model.describe()
        return {
            "model": info["model"], "config": info["config"], "n_tracks": info["n_tracks"],
            "title_fallback": self.model.fallback is not None, "approximate": self.approximate,
            "fit_info": info["fit_info"],
            "segue_version": __version__,
            "store": {"fingerprint": self.store.fingerprint, "playlists": self.store.n_playlists,
                      "tracks": self.store.n_tracks},
        }

    # ---- recommendations ---------------------------------------------------------------------
    async def recommend(self, uris: list[str], title: str | None, k: int, explain: bool = False) -> Recommendations:
        """Top-``k`` tracks to add to a playlist of ``uris`` titled ``title`` (seeds excluded); URIs the store
        does not know are left out of the seeds and listed in ``unknown_tracks``."""
        ids = self.store.track_ids(uris)
        known = ids >= 0
        seeds = ids[known]
        found, scores = await asyncio.wrap_future(self._batcher.submit(seeds, title or None, k))
        keep = (found >= 0) & np.isfinite(scores)
        found, scores = found[keep], scores[keep]
        tracks = self.tracks(found)
        for track, score in zip(tracks, scores.tolist()):
            track["score"] = score
        if explain:
            for track, why in zip(tracks, self.explain(seeds, found)):
                track["why"] = why
        unknown = [uri for uri, ok in zip(uris, known.tolist()) if not ok]
        return Recommendations(tracks, list(dict.fromkeys(unknown)))

    def explain(self, seeds: np.ndarray, recommended: np.ndarray) -> list[dict | None]:
        """Per recommended track: the seed it is most plainly related to, and how (album, artist, playlists)."""
        if len(seeds) == 0 or len(recommended) == 0:
            return [None] * len(recommended)
        recent = seeds[::-1]
        recent = recent[np.sort(np.unique(recent, return_index=True)[1])][:EXPLAIN_SEEDS]  # newest first, distinct
        album, artist = self.store.track_album, self.store.track_artist
        # (r, s) masks; -1 (unknown) matches nothing
        same_album = (album[recommended][:, None] == album[recent][None, :]) & (album[recent] >= 0)[None, :]
        same_artist = (artist[recommended][:, None] == artist[recent][None, :]) & (artist[recent] >= 0)[None, :]
        together = (self._track_playlists[recommended] @ self._track_playlists[recent].T).toarray()  # (r, s)
        seed_tracks = self.tracks(recent)
        hints: list[dict | None] = []
        # argmax takes the first best seed, i.e. the most recent one
        for has_album, has_artist, row_album, row_artist, row_together in zip(
            same_album.any(1).tolist(), same_artist.any(1).tolist(), same_album.argmax(1).tolist(),
            same_artist.argmax(1).tolist(), together.argmax(1).tolist(),
        ):
            shared = int(together[len(hints), row_together])
            if has_album:
                reason, seed = "same_album", row_album
            elif has_artist:
                reason, seed = "same_artist", row_artist
            elif shared > 0:
                reason, seed = "together", row_together
            else:
                hints.append(None)
                continue
            hints.append({"reason": reason, "seed": seed_tracks[seed]["uri"], "seed_name": seed_tracks[seed]["name"],
                          "playlists": shared if reason == "together" else None})
        return hints
