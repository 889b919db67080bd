"""Settings every neural model shares (song vectors, training data, optimisation, device) and the device helpers.

A model's config subclasses :class:`NeuralConfig` with its architecture fields; the training machinery
(:mod:`segue.models.neural.training`) reads only the fields defined here.
"""

from __future__ import annotations

import dataclasses

import torch

from segue.config import setting
from segue.errors import InputError
from segue.models.base import FallbackConfig

DATA_REGIMES = ("prefix", "seed")
ITEM_FEATURES = ("track", "track+album+artist")
INITS = ("normal", "als")
TARGETS = ("later", "next")
DEVICES = ("auto", "cpu", "cuda")
FULL_SOFTMAX_AUTO = {"cpu": 50_000, "cuda": 4_000_000}  # songs; measured in benchmarks/meanvar_gpu.py


@dataclasses.dataclass(frozen=True)
class NeuralConfig(FallbackConfig):
    # --- song vectors ---
    dim: int = setting(50, gt=0)  # embedding width
    item_features: str = setting("track+album+artist", choices=ITEM_FEATURES)  # "track": a free vector per song
    dropout: float = setting(0.1, ge=0.0, lt=1.0)
    # "als": warm-start song vectors from implicit ALS item factors (APC-RTA); "normal": random
    init: str = setting("als", choices=INITS)
    title: bool = True  # the playlist title as an input (hashed words + character 3-grams)
    title_buckets: int = setting(1 << 15, gt=0)  # rows of the hashed title table
    # --- data (see training) ---
    # "seed": the write-up's 20 seeds -> songs 21..30; "prefix": every prefix
    data: str = setting("prefix", choices=DATA_REGIMES)
    files: int = setting(0, ge=0)  # use the first files*1000 playlists of the store (0 = all)
    training_sets: int = setting(10, ge=1, le=10)  # data=seed: how many of the ten targets (songs 21..30)
    max_seeds: int = setting(50, gt=0)  # data=prefix: prefixes of 1..max_seeds songs
    # data=prefix: pairs drawn per playlist per round; 0 = one per song after the first (at most max_seeds)
    pairs_per_playlist: int = setting(5, ge=0)
    # data=prefix: "later" = any song after the prefix, "next" = the next one
    target: str = setting("later", choices=TARGETS)
    # share of training playlists put in random order each round (random-seed queries; the challenge has 2 such
    # categories of 10); never with data=seed
    shuffle: float = setting(0.2, ge=0.0, le=1.0)
    min_steps: int = setting(10, ge=0)  # data=prefix: every round has at least this many batches (small stores)
    # --- optimisation ---
    lr: float = setting(3e-3, gt=0.0)
    weight_decay: float = setting(0.0, ge=0.0)  # AdamW's decoupled decay (embeddings excluded, see optimizer groups)
    # the song/album/artist tables and the song bias learn at lr x table_lr
    table_lr: float = setting(1.0, gt=0.0)
    # decoupled decay on the song/album/artist tables (sparse: touched rows only)
    embedding_decay: float = setting(0.0, ge=0.0)
    sparse: bool = True              # sampled softmax: sparse gradients + lazy row-wise AdamW for the tables
                                     # (only the rows a batch touches are updated); False: dense AdamW
    batch_size: int = setting(512, gt=0)
    # upper bound; rounds are short and early stopping on held-out R-precision sets the real budget (a small or
    # sparse store stops sooner)
    rounds: int = setting(30, gt=0)
    patience: int = setting(2, ge=0)  # rounds without a better held-out R-precision before stopping
    holdout: float = setting(0.02, ge=0.0, lt=0.5)  # share of training playlists held out for per-round evaluation
    max_holdout: int = setting(2000, ge=0)
    # catalogues above this train with sampled softmax (log-Q corrected); -1 = by device (FULL_SOFTMAX_AUTO):
    # 2 CPU cores take ~0.7 s/step for a full softmax over 103k songs (sampled ~0.1 s); an H200 takes 37 ms
    # over the full MPD's 2.26M songs (15 GB), so the seed's objective fits
    full_softmax_max: int = setting(-1, ge=-1)
    negatives: int = setting(4096, gt=0)  # sampled softmax: shared log-uniform negatives per batch
    # sampled softmax: per training playlist, this many songs the model scores highest for it but absent from
    # it, added to its softmax exactly (no log-Q term; see layers.top_absent); 0 = none
    hard_negatives: int = setting(0, ge=0)
    device: str = setting("auto", choices=DEVICES)
    seed: int = 0
    threads: int = setting(0, ge=0)  # torch intra-op threads (0 = torch's default)
    checkpoint_dir: str = ""  # if set, the latest round is written there (safetensors + JSON)


def full_softmax_limit(config: NeuralConfig, device: torch.device) -> int:
    """The largest catalogue trained with the full softmax: the setting, or by device when it is -1."""
    return config.full_softmax_max if config.full_softmax_max >= 0 else FULL_SOFTMAX_AUTO[device.type]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("setting device=cuda but no CUDA device is available; use device=cpu or auto.")
    return torch.device(name)
