"""Network pieces every neural model shares: song vectors (track + album + artist), the per-song bias, the
ALS warm start, and the title encoder (hashed words and character n-grams).

Song vectors: ``v_i = track[i] + album[album(i)] + artist[artist(i)]`` (``item_features="track"``: the track
table alone). A song seen in one or two playlists still shares its album's and artist's rows, which is what
keeps rare songs usable on sparse data. Unknown album/artist (-1) map to a padding row that stays zero.

ALS warm start (``init="als"``, as Deezer's APC-RTA initialises its song embeddings): implicit-feedback ALS
is fitted on the training playlists at the model width (so no projection is needed); the track rows start
as a third of the song's ALS factors and the album/artist rows as a third of the mean of their songs'
factors, so ``v_i`` starts as the song's factors blended with its album's and artist's (rescaled to the
random init's size); songs ALS never saw keep small random vectors.

Titles: :func:`title_tokens` normalises a title (:func:`segue.data.mpd.normalize_title`) and hashes its
words and the character 3-grams of ``" title "`` into ``buckets`` rows (CRC-32, stable across runs and
machines); :class:`TitleEncoder` averages those rows (an ``EmbeddingBag``). An empty title is a zero vector.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from segue.data.mpd import normalize_title

TITLE_NGRAM = 3
HARD_BLOCK_FLOATS = 1 << 22  # scores held at once while mining hard negatives (top_absent)


class ItemEmbeddings(nn.Module):
    """Song vectors and per-song bias; ``set_sparse`` switches every table to sparse gradients."""

    def __init__(self, n_tracks: int, dim: int, track_album: np.ndarray | None = None,
                 track_artist: np.ndarray | None = None, n_albums: int = 0, n_artists: int = 0,
                 features: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.n_tracks, self.dim, self.features = n_tracks, dim, features
        std = 1.0 / math.sqrt(dim * (3 if features else 1))
        self.track_emb = nn.Embedding(n_tracks, dim)
        nn.init.normal_(self.track_emb.weight, std=std)
        if features:
            album = np.where(np.asarray(track_album) < 0, n_albums, track_album).astype(np.int64)
            artist = np.where(np.asarray(track_artist) < 0, n_artists, track_artist).astype(np.int64)
            self.register_buffer("track_album", torch.from_numpy(album))
            self.register_buffer("track_artist", torch.from_numpy(artist))
            self.album_emb = nn.Embedding(n_albums + 1, dim, padding_idx=n_albums)
            self.artist_emb = nn.Embedding(n_artists + 1, dim, padding_idx=n_artists)
            for table in (self.album_emb, self.artist_emb):
                nn.init.normal_(table.weight, std=std)
                with torch.no_grad():
                    table.weight[-1].zero_()
        # a one-column table so that it can take sparse gradients
        self.bias_emb = nn.Embedding(n_tracks, 1, _weight=torch.zeros(n_tracks, 1)) if bias else None

    def vectors(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(len(ids) | n_tracks, dim) song vectors of ``ids`` (all songs when None)."""
        if ids is None:
            vec = self.track_emb.weight
            if self.features:
                vec = vec + self.album_emb(self.track_album) + self.artist_emb(self.track_artist)
            return vec
        vec = self.track_emb(ids)
        if self.features:
            vec = vec + self.album_emb(self.track_album[ids]) + self.artist_emb(self.track_artist[ids])
        return vec

    def bias(self, ids: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-song bias of ``ids`` (all songs when None), or None without one."""
        if self.bias_emb is None:
            return None
        return self.bias_emb.weight[:, 0] if ids is None else self.bias_emb(ids)[..., 0]

    @torch.no_grad()
    def warm_start(self, factors: np.ndarray) -> None:
        """Start from ALS item factors (n_tracks, dim); see the module docstring."""
        factors = torch.from_numpy(np.ascontiguousarray(factors, dtype=np.float32))
        seen = factors.abs().sum(1) > 0
        if not bool(seen.any()):
            return
        # the sum of the three parts gets the random init's per-coordinate size
        scale = (1.0 / math.sqrt(self.dim)) / factors[seen].std().clamp_min(1e-8)
        factors = factors * scale
        jitter = 0.1 * self.track_emb.weight
        if not self.features:
            self.track_emb.weight.copy_(factors + jitter)
            return
        self.track_emb.weight.copy_(factors / 3 + jitter)
        for table, owner in ((self.album_emb, self.track_album), (self.artist_emb, self.track_artist)):
            sums = torch.zeros_like(table.weight).index_add_(0, owner[seen], factors[seen])
            counts = torch.zeros(len(table.weight)).index_add_(0, owner[seen], torch.ones(int(seen.sum())))
            means = sums / counts.clamp_min(1).unsqueeze(1)
            means[-1] = 0.0  # the padding row (unknown album / artist) stays zero
            table.weight.copy_(torch.where(counts.unsqueeze(1) > 0, means / 3, table.weight))


def title_tokens(titles: Sequence[str | None] | None, n: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (offsets (n + 1,) int64, ids int64) of hashed title features; None titles give empty rows.

    The Python work is per distinct normalised title (a few per hundred playlists on MPD), not per playlist.
    """
    normalised = [normalize_title(t) if t else "" for t in titles] if titles is not None else [""] * n
    unique, inverse = np.unique(np.asarray(normalised, dtype=object).astype(str), return_inverse=True)
    features = [_hashed_features(t, buckets) for t in unique]
    sizes = np.fromiter((len(f) for f in features), dtype=np.int64, count=len(features))
    flat = np.concatenate(features).astype(np.int64) if sizes.sum() else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lengths = sizes[inverse]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = flat[np.repeat(starts[inverse] - offsets[:-1], lengths) + np.arange(offsets[-1])] if offsets[-1] else flat[:0]
    return offsets, ids


def _hashed_features(title: str, buckets: int) -> np.ndarray:
    if not title:
        return np.zeros(0, np.int64)
    padded = f" {title} "
    grams = [f"w:{w}" for w in title.split()] + [padded[i : i + TITLE_NGRAM]
                                                 for i in range(len(padded) - TITLE_NGRAM + 1)]
    return np.array([zlib.crc32(g.encode("utf-8")) % buckets for g in grams], dtype=np.int64)


class TitleEncoder(nn.Module):
    """Mean of the hashed title feature rows: (b, dim); an empty title gives zeros."""

    def __init__(self, buckets: int, dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        # always sparse: a step touches a few rows of a large table (the optimizer steps it row-wise)
        self.title_emb = nn.EmbeddingBag(buckets, dim, mode="mean", sparse=True)
        nn.init.normal_(self.title_emb.weight, std=1.0 / math.sqrt(dim))

    def forward(self, offsets: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.title_emb(ids, offsets[:-1])                                          # (b, dim)


def set_sparse(module: nn.Module, sparse: bool) -> None:
    """Sparse (True) or dense gradients for every song table of ``module`` (the title table is always sparse)."""
    for sub in module.modules():
        if isinstance(sub, nn.Embedding):
            sub.sparse = bool(sparse)


class PlaylistNet(nn.Module):
    """Base of segue's networks: song vectors (``items``), an optional title encoder (``title``), and the
    forward the training loop calls. Subclasses implement

    * ``train_outputs(batch, items=None) -> (h (m, dim), targets (m,))``: playlist vectors at every
      prediction point of a training batch and the song each should rank first;
    * ``playlist_vectors(indptr, indices, title_offsets, title_ids, items=None) -> (b, dim)``: the vectors
      of playlists given as CSR seeds and title features (numpy), for ranking every song;
    * ``round_examples(seqs, config, rng)`` and ``collate(seqs, examples, titles, device, rng)``: which
      examples the net learns from and how they are batched (see :mod:`segue.models.neural.examples`);
    * ``example_of_rows(batch)`` when an example gives several rows (the example each row comes from; hard
      negatives are mined per example).

    A song's score is ``h . output_vectors[song] + output_bias[song]``.
    """

    def __init__(self, config, n_tracks: int, track_album: np.ndarray | None = None,
                 track_artist: np.ndarray | None = None, n_albums: int = 0, n_artists: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.config = config
        self.n_tracks = n_tracks
        self.items = ItemEmbeddings(n_tracks, config.dim, track_album, track_artist, n_albums, n_artists,
                                    features=config.item_features == "track+album+artist", bias=bias)
        self.title = TitleEncoder(config.title_buckets, config.dim) if config.title else None

    def output_vectors(self, ids: torch.Tensor | None = None, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scoring vectors of songs ``ids`` (all when None); ``items`` reuses already computed song vectors."""
        if items is not None:
            return items if ids is None else items[ids]
        return self.items.vectors(ids)

    def output_bias(self, ids: torch.Tensor | None = None) -> torch.Tensor | None:
        return self.items.bias(ids)

    def title_vectors(self, offsets: torch.Tensor, ids: torch.Tensor) -> torch.Tensor | None:
        return self.title(offsets, ids) if self.title is not None else None

    def set_sparse(self, sparse: bool) -> "PlaylistNet":
        """Sparse (True) or dense gradients for every table. Sparse needs every table lookup to go through
        ids (the sampled-softmax forward); the full-softmax forward uses whole tables and must stay dense."""
        set_sparse(self, sparse)
        return self

    def device(self) -> torch.device:
        return self.items.track_emb.weight.device

    def example_of_rows(self, batch: dict) -> torch.Tensor:
        """(m,) the batch example (pair, window) each row of ``train_outputs`` comes from: one row each."""
        return torch.arange(len(batch["targets"]), device=batch["targets"].device)

    def forward(self, batch: dict, negatives: torch.Tensor | None = None, hard_negatives: int = 0):
        """Training forward. Full softmax: (logits (m, n_tracks), targets (m,)); with sampled ``negatives``
        (s,): ((target logits (m,), negative logits (m, s), hard logits (m, hard_negatives) or None),
        targets (m,)). Hard negatives: per example, the ``hard_negatives`` songs scoring highest for the
        mean of its rows' vectors that are not in its playlist (:func:`top_absent`, no gradient through the
        choice); a sampled negative that is also one of them is masked (-inf) so that it counts once."""
        if negatives is None:
            items = self.items.vectors()                                              # (n, dim)
            h, targets = self.train_outputs(batch, items)                             # (m, dim), (m,)
            logits = h @ self.output_vectors(items=items).T                           # (m, n)
            bias = self.output_bias()
            return (logits + bias if bias is not None else logits), targets
        h, targets = self.train_outputs(batch)
        pos = (h * self.output_vectors(targets)).sum(1)                               # (m,)
        neg = h @ self.output_vectors(negatives).T                                    # (m, s)
        bias = self.output_bias(targets)
        if bias is not None:
            pos = pos + bias
            neg = neg + self.output_bias(negatives)
        if not hard_negatives:
            return (pos, neg, None), targets
        example = self.example_of_rows(batch)                                         # (m,)
        b = len(batch["member_ptr"]) - 1
        with torch.no_grad():
            counts = torch.bincount(example, minlength=b).clamp_min(1).unsqueeze(1)
            query = h.new_zeros(b, h.shape[1]).index_add_(0, example, h.detach()) / counts   # (b, dim)
            hard, ok = top_absent(query, self.output_vectors(), self.output_bias(), batch["member_ptr"],
                                  batch["members"], hard_negatives)                   # (b, k), (b, k)
        hard_logits = torch.einsum("md,mkd->mk", h, self.output_vectors(hard)[example])       # (m, k)
        if bias is not None:
            hard_logits = hard_logits + self.output_bias(hard)[example]
        hard_logits = hard_logits.masked_fill(~ok[example], float("-inf"))
        n = self.n_tracks
        offset = torch.arange(b, device=hard.device).unsqueeze(1) * n
        repeated = torch.isin(offset + negatives.unsqueeze(0), (offset + hard)[ok])   # (b, s)
        neg = neg.masked_fill(repeated[example], float("-inf"))
        return (pos, neg, hard_logits), targets


@torch.no_grad()
def top_absent(query: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor | None, member_ptr: torch.Tensor,
               members: torch.Tensor, k: int, block_floats: int = HARD_BLOCK_FLOATS):
    """Per row of ``query`` (b, dim), the ``k`` songs with the highest ``query . v + bias`` that are not among
    the row's members (CSR ``member_ptr`` (b + 1,), ``members``): (ids (b, k) int64, ok (b, k) bool; False
    only where the catalogue has fewer than k other songs). Scores ``block_floats`` at a time."""
    b, n = query.shape[0], vectors.shape[0]
    counts = member_ptr[1:] - member_ptr[:-1]
    width = min(n, k + (int(counts.max()) if b else 0))    # enough to keep k after dropping the members
    step = max(width, block_floats // max(1, b))
    top_v = top_i = None
    for lo in range(0, n, step):
        scores = query @ vectors[lo : lo + step].T                                    # (b, step)
        if bias is not None:
            scores += bias[lo : lo + step]
        v, i = scores.topk(min(width, scores.shape[1]), dim=1)
        i = i + lo
        if top_v is not None:
            v, i = torch.cat([top_v, v], 1), torch.cat([top_i, i], 1)
            v, pick = v.topk(width, dim=1)
            i = i.gather(1, pick)
        top_v, top_i = v, i
    owner = torch.repeat_interleave(torch.arange(b, device=query.device), counts)
    member = torch.isin(torch.arange(b, device=query.device).unsqueeze(1) * n + top_i, owner * n + members)
    order = torch.sort(member.to(torch.int8), dim=1, stable=True).indices[:, :k]   # non-members first, by score
    ids, ok = top_i.gather(1, order), ~member.gather(1, order)
    if ids.shape[1] < k:  # a catalogue smaller than k
        pad = k - ids.shape[1]
        ids = torch.cat([ids, ids.new_zeros(b, pad)], 1)
        ok = torch.cat([ok, ok.new_zeros(b, pad)], 1)
    return ids, ok


def load_state(cls: type[PlaylistNet], config, state: dict[str, torch.Tensor]) -> PlaylistNet:
    """Rebuild a ``cls`` network from its safetensors state dict (the shapes give the table sizes)."""
    kwargs = {}
    if "items.track_album" in state:
        kwargs = dict(track_album=state["items.track_album"].numpy(), track_artist=state["items.track_artist"].numpy(),
                      n_albums=state["items.album_emb.weight"].shape[0] - 1,
                      n_artists=state["items.artist_emb.weight"].shape[0] - 1)
    net = cls(config, state["items.track_emb.weight"].shape[0], **kwargs)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights do not match the config (missing {missing}, unexpected {unexpected})")
    return net
