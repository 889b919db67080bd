"""CLI commands (filled in by its area)."""

from segue.commands._app import app, command  # noqa: F401
