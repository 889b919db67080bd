"""``sequential``: a small causal transformer over the playlist (title first), as a segue recommender.

The network is :class:`~segue.models.neural.sequential_net.SequentialNet` (what inference does with
unordered seeds is said there); training, scoring and persistence are the shared neural machinery
(:mod:`segue.models.neural.adapter`, :mod:`segue.models.neural.training`), ``--nproc`` included.
"""

from __future__ import annotations

from segue.models.base import register
from segue.models.neural.adapter import NeuralRecommender
from segue.models.neural.sequential_net import SequentialConfig, SequentialNet

__all__ = ["Sequential", "SequentialConfig"]


@register
class Sequential(NeuralRecommender):
    """Causal transformer decoder over [title, songs...]; the last output scores every song."""

    name = "sequential"
    Config = SequentialConfig
    Net = SequentialNet
