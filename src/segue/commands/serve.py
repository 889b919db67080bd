"""``segue serve``: the HTTP API and web page for one model (FastAPI under uvicorn)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Optional

import typer

from segue.commands._app import command, console, err_console
from segue.errors import InputError, forget_interrupts
from segue.serve.service import MAX_BATCH

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to print when ``host`` makes the server reachable from other machines."""
    if is_loopback(host):
        return None
    return (f"warning: serving on {host} makes the API reachable from other machines; it has no authentication "
            "and no TLS. Use --host 127.0.0.1 unless a proxy in front of it handles both.")


@command("serve")
def serve_command(
    model_dir: Path = typer.Argument(..., help="Model directory (from `segue train`)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Store (default: the one the model was trained on)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; loopback by default."),
    port: int = typer.Option(8000, "--port", help="TCP port (0 picks a free one)."),
    index: Optional[Path] = typer.Option(
        None, "--index", help="Search index file (default: STORE/search-index.sqlite, or the user cache when the "
                              "store is read-only); built on first use."),
    max_batch: int = typer.Option(MAX_BATCH, "--max-batch", help="Concurrent recommend requests scored together "
                                                          "(1: one at a time)."),
    ann: str = typer.Option("off", "--ann", help="Approximate nearest-neighbour index for models that have one "
                            "(als): off (exact answers), auto (from 1,000,000 tracks on), on. Built beside the model "
                            "on first use; its recall is not yet good at 1M+ songs (README), so it is opt-in."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical, error, warning, info."),
) -> None:
    """Serve recommendations, track search and a playlist-building web page at http://HOST:PORT/ (API docs at /docs).

    Loads the model and store once; stops cleanly on Ctrl-C or SIGTERM (requests in flight finish first).
    """
    import uvicorn

    from segue.serve.app import create_app
    from segue.serve.service import Service

    if not 0 <= port <= 65535:
        raise InputError(f"--port must lie in 0..65535 (got {port}).")
    if max_batch < 1:
        raise InputError(f"--max-batch must be at least 1 (got {max_batch}).")
    warning = exposure_warning(host)
    if warning:
        err_console.print(warning, style="bold yellow", soft_wrap=True, highlight=False)
    service = Service.load(model_dir, store, index_path=index, progress=sys.stderr.isatty(), max_batch=max_batch,
                           ann=ann)
    where = f"http://{host}:{port}/" if port else "a free port (uvicorn names it below)"
    console.print(f"serving {service.model.name} ({service.store.n_tracks:,} tracks) on {where} (API docs at /docs)",
                  highlight=False, soft_wrap=True)
    # uvicorn handles SIGINT/SIGTERM: stop accepting, finish requests in flight, run the app's shutdown. Then it
    # raises the signal again for the handler it replaced (segue's); that one is how serving ends, not an
    # interrupt, so it is forgotten.
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10,
                server_header=False)
    forget_interrupts()
