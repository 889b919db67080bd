"""The Typer app and the decorator that turns segue's errors into one clear line and exit code 1."""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.text import Text

from segue.errors import SegueError

app = typer.Typer(
    name="segue",
    help="Automatic playlist continuation on Million-Playlist-Dataset-format data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print ``error: message`` to stderr and return the Exit to raise."""
    # soft_wrap: never break a file path or URI across lines
    err_console.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)
    return typer.Exit(code)


def command(*args, **kwargs):
    """Like ``app.command`` but a :class:`SegueError` (or IndexError from the library) exits 1 with its message."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            try:
                return fn(*a, **kw)
            except (SegueError, IndexError) as exc:
                raise fail(str(exc)) from None

        app.command(*args, **kwargs)(wrapper)
        return fn

    return decorate
