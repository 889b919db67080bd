"""The Typer app, and the one handler that turns every failure into one clear line and an exit code."""

from __future__ import annotations

import functools
import os
import signal
import sys
import traceback

import click
import typer
from rich.console import Console
from rich.text import Text

from segue.errors import Interrupted, SegueError, note_interrupt, raise_if_interrupted

app = typer.Typer(
    name="segue",
    help="Automatic playlist continuation on Million-Playlist-Dataset-format data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
ISSUES_HINT = "please report it (rerun with --debug for the traceback)"
_debug = {"on": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error.")) -> None:
    _debug["on"] = debug or os.environ.get("SEGUE_DEBUG", "") not in ("", "0")  # set afresh for every run


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print ``error: message`` to stderr and return the Exit to raise."""
    # soft_wrap: never break a file path or URI across lines
    err_console.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)
    return typer.Exit(code)


def _raise_interrupted(signum, frame) -> None:
    note_interrupt(signum)
    raise Interrupted(signum)


def _unraisable(unraisable) -> None:
    """Python reports an exception it had to drop (raised in a weakref or GC callback) with a traceback; a
    dropped Interrupted is recorded already (``note_interrupt``) and acted on before any output is committed."""
    if not isinstance(unraisable.exc_value, Interrupted):
        sys.__unraisablehook__(unraisable)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise :class:`Interrupted`, so writers clean up and the command exits 130/143."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)
    sys.unraisablehook = _unraisable


def _interrupted(exc: Interrupted) -> "typer.Exit":
    outputs = "; ".join(f"{path} unchanged" for path in exc.outputs)
    err_console.print(Text("interrupted" + (f"; {outputs}" if outputs else ""), style="bold red"), soft_wrap=True)
    return typer.Exit(exc.exit_code)


def command(*args, **kwargs):
    """Like ``app.command``, wrapped in segue's one error handler: a :class:`SegueError` (or IndexError from
    the library) prints its message, an OSError its file and reason, SIGINT/SIGTERM what was left unchanged,
    anything else "internal error" (the traceback only under ``--debug``)."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            try:
                result = fn(*a, **kw)
                raise_if_interrupted()  # one whose raise was dropped, in a command that wrote nothing after it
                return result
            except (SegueError, IndexError) as exc:
                raise fail(str(exc)) from None
            except Interrupted as exc:
                raise _interrupted(exc) from None
            except KeyboardInterrupt:
                raise _interrupted(Interrupted(signal.SIGINT)) from None
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                raise fail(f"{where}{exc.strerror or exc}") from None
            except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001  (the one place that catches everything)
                if _debug["on"]:
                    traceback.print_exc()
                raise fail(f"internal error: {type(exc).__name__}: {exc}; {ISSUES_HINT}.") from None

        app.command(*args, **kwargs)(wrapper)
        return fn

    return decorate
