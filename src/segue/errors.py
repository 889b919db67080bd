"""Exceptions that carry a sentence a user can act on.

The CLI prints ``str(exc)`` and exits non-zero; the API maps them onto one JSON error shape.
"""

from __future__ import annotations


class SegueError(Exception):
    """Base class for every user-facing error in segue."""

    status_code = 400


class InputError(SegueError, ValueError):
    """Bad input data: a file, a field, a value. The message names where and what to do."""


class StoreError(SegueError):
    """A store is missing, incomplete or of an unknown format."""


class ModelError(SegueError):
    """A model directory is missing, inconsistent, or belongs to another store."""


class NotFoundError(SegueError, KeyError):
    """A pid, track URI or model name that does not exist."""

    status_code = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputError(SegueError):
    """An output that must not or cannot be written: not this command's kind, an input, locked, unwritable."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (a KeyboardInterrupt, so ``except Exception`` does not catch it and code that
    handles Ctrl-C handles both).

    ``outputs`` lists the outputs that were being written and are left as they were.
    """

    def __init__(self, signum: int, outputs: list | None = None) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.outputs = list(outputs or [])

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


# Signals the CLI's handler has seen. The handler raises Interrupted where the signal lands, but Python drops
# an exception raised inside a weakref or GC callback (it only reports it as "Exception ignored"), and then the
# command would run on and commit its output. So the handler also records the signal here, and the output
# writers and the command wrapper check it before they commit or return.
_received: list[int] = []


def note_interrupt(signum: int) -> None:
    """Record that SIGINT/SIGTERM arrived (the CLI's signal handler calls this before raising)."""
    _received.append(int(signum))


def forget_interrupts() -> None:
    """Forget the recorded signals: for a command whose normal end is a signal (``segue serve``)."""
    _received.clear()


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal arrived whose raise may have been dropped (see ``_received``)."""
    if _received:
        raise Interrupted(_received[0])
