"""``sequential``: a small causal transformer over the playlist (title first), as a segue recommender.

The network is :class:`~segue.models.neural.sequential_net.SequentialNet` (what inference does with
unordered seeds is said there); training, scoring and persistence are the shared neural machinery
(:mod:`segue.models.neural.adapter`, :mod:`segue.models.neural.training`), ``--nproc`` included.
"""

from __future__ import annotations

from segue.models.base import register
from segue.models.neural.adapter import NeuralRecommender
from segue.models.neural.sequential_net import SequentialConfig, SequentialNet

__all__ = ["Sequential", "SequentialConfig", "SEARCH_SPACE"]

# `segue tune`'s search space (format: segue.evaluate.tune); dim is a choice so it always divides by the
# 4 heads; rounds stay an upper bound (early stopping on the model's own held-out playlists)
SEARCH_SPACE = {
    "dim": {"choices": [32, 64, 128]},
    "layers": {"low": 1, "high": 3},
    "dropout": {"low": 0.0, "high": 0.3},
    "lr": {"low": 1e-4, "high": 3e-3, "log": True},
}


@register
class Sequential(NeuralRecommender):
    """Causal transformer decoder over [title, songs...]; the last output scores every song."""

    name = "sequential"
    Config = SequentialConfig
    search_space = SEARCH_SPACE
    Net = SequentialNet
