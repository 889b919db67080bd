"""``meanvar``, the seed's model, as a segue recommender.

The network is :class:`~segue.models.neural.meanvar_net.MeanVarNet`; training, scoring and persistence are
the shared neural machinery (:mod:`segue.models.neural.adapter`, :mod:`segue.models.neural.training`).
``data=seed`` trains on the write-up's data exactly (20 seeds -> songs 21-30, never shuffled).
"""

from __future__ import annotations

from segue.models.base import register
from segue.models.neural.adapter import WEIGHTS_FILE, NeuralRecommender
from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet

__all__ = ["WEIGHTS_FILE", "MeanVar", "MeanVarConfig", "SEARCH_SPACE"]

# `segue tune`'s search space (format: segue.evaluate.tune); rounds stay an upper bound, early stopping
# on the model's own held-out playlists sets the real budget
SEARCH_SPACE = {
    "dim": {"low": 32, "high": 128, "log": True},
    "dropout": {"low": 0.0, "high": 0.3},
    "lr": {"low": 3e-4, "high": 1e-2, "log": True},
    "shuffle": {"low": 0.0, "high": 0.5},
}


@register
class MeanVar(NeuralRecommender):
    """Mean + variance of seed-song embeddings -> MLPs -> softmax over songs (the seed write-up's model)."""

    name = "meanvar"
    Config = MeanVarConfig
    search_space = SEARCH_SPACE
    Net = MeanVarNet
