"""Progress bars (rich) for long work in the library; silent when disabled or not on a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=_console,
        disable=not enabled,
        transient=False,
    )


@contextlib.contextmanager
def progress_task(description: str, total: float | None, enabled: bool = True) -> Iterator:
    """Yield ``advance(n=1, **info)``; info fields (e.g. loss, rate) are shown beside the bar."""
    with make_progress(enabled) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: float = 1, **info) -> None:
            text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
            progress.update(task, advance=n, **({"info": text} if info else {}))

        yield advance


def track(iterable: Iterable, description: str, total: float | None = None, enabled: bool = True) -> Iterator:
    """Iterate with a progress bar."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_task(description, total, enabled) as advance:
        for item in iterable:
            yield item
            advance()
