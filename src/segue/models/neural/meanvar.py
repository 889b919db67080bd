"""``meanvar``, the seed's model, as a segue recommender.

The network is :class:`~segue.models.neural.meanvar_net.MeanVarNet`; training, scoring and persistence are
the shared neural machinery (:mod:`segue.models.neural.adapter`, :mod:`segue.models.neural.training`).
``data=seed`` trains on the write-up's data exactly (20 seeds -> songs 21-30, never shuffled).
"""

from __future__ import annotations

from segue.models.base import register
from segue.models.neural.adapter import WEIGHTS_FILE, NeuralRecommender
from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet

__all__ = ["WEIGHTS_FILE", "MeanVar", "MeanVarConfig"]


@register
class MeanVar(NeuralRecommender):
    """Mean + variance of seed-song embeddings -> MLPs -> softmax over songs (the seed write-up's model)."""

    name = "meanvar"
    Config = MeanVarConfig
    Net = MeanVarNet
