"""CLI commands, one module per area, all registered on the single Typer app in ``_app``."""

from segue.commands._app import app

# Importing a module registers its commands on ``app``.
COMMAND_MODULES = ("synth", "data", "evaluation", "models", "tune", "inspect", "serve")

__all__ = ["app", "COMMAND_MODULES"]
