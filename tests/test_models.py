"""Every registered model runs the shared suite (tests/model_suite.py); plus the train/recommend CLI."""

from __future__ import annotations

import numpy as np
import pytest
from model_suite import FAST_OVERRIDES, ModelSuite, seeds_of_genre, tiny_playlists
from typer.testing import CliRunner

from segue.data.store import build_store
from segue.models.base import MODEL_MODULES, load_model

for _name in MODEL_MODULES:
    globals()[f"TestModel_{_name}"] = type(
        f"TestModel_{_name}", (ModelSuite,), {"model_name": _name, "overrides": FAST_OVERRIDES.get(_name, {})}
    )
