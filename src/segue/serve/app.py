"""The HTTP API and web page of ``segue serve`` (FastAPI).

Every error, whatever raised it (a bad body, an unknown route, a missing pid, a bug), answers with one JSON
shape, ``{"error": {"status": <int>, "message": <str>}}``, and never a traceback. Request bodies are capped
(:data:`MAX_BODY_BYTES`), as are seeds per playlist and ``k``. The page and its static files carry a strict
Content-Security-Policy (scripts, styles and requests from this origin only); the API docs at ``/docs`` are
served from files bundled with ``fastapi-offline`` (no CDN: segue never needs the network).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException

from segue import __version__
from segue.errors import SegueError
from segue.serve.service import Service

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a playlist of MAX_SEEDS URIs is ~50 KB
MAX_SEEDS = 1000  # seed tracks per request (MPD playlists hold at most 250)
MAX_K = 500  # the challenge's list length
MAX_TEXT = 300  # characters in a URI, title or search query

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI and ReDoc start from an inline script and ReDoc runs a worker from a blob.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"), (b"cross-origin-opener-policy", b"same-origin")]

Uri = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]


# ---- request and response bodies -------------------------------------------------------------
class RecommendRequest(BaseModel):
    """A playlist to continue: seed tracks (may be empty), an optional title, how many tracks to return."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={
        "examples": [{"tracks": ["spotify:track:0UaMYEvWZi0ZqiDOoHU3YI"], "title": "road trip", "k": 20}]})
    tracks: list[Uri] = Field(default_factory=list, max_length=MAX_SEEDS,
                              description=f"Seed track URIs in playlist order (at most {MAX_SEEDS}).")
    title: str | None = Field(None, max_length=MAX_TEXT, description="Playlist title; helps most with few seeds.")
    k: int = Field(20, ge=1, le=MAX_K, description=f"How many tracks to return (1..{MAX_K}).")
    explain: bool = Field(False, description="Add a `why` hint to each track (a related seed).")


class Track(BaseModel):
    uri: str
    name: str | None
    artist: str | None
    album: str | None
    artist_uri: str | None
    album_uri: str | None
    duration_ms: int | None
    occurrences: int = Field(description="How often the track occurs in the store's playlists.")


class Why(BaseModel):
    reason: Literal["same_album", "same_artist", "together"]
    seed: str = Field(description="URI of the seed track the recommendation relates to.")
    seed_name: str | None
    playlists: int | None = Field(description="For `together`: training playlists holding both tracks.")


class RecommendedTrack(Track):
    score: float = Field(description="The model's score (higher is better; comparable within one answer).")
    why: Why | None = None


class RecommendResponse(BaseModel):
    model: str
    tracks: list[RecommendedTrack]
    unknown_tracks: list[str] = Field(description="Seed URIs the store does not know (left out of the seeds).")


class SearchResponse(BaseModel):
    query: str
    tracks: list[Track]


class PlaylistResponse(BaseModel):
    pid: int
    name: str | None
    description: str | None
    num_followers: int | None
    tracks: list[Track]


class StoreInfo(BaseModel):
    fingerprint: str
    playlists: int
    tracks: int


class ModelResponse(BaseModel):
    model: str
    config: dict[str, Any]
    n_tracks: int
    title_fallback: bool
    approximate: bool = Field(description="Recommendations come from an approximate nearest-neighbour index.")
    fit_info: dict[str, Any]
    segue_version: str
    store: StoreInfo


class Health(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in [(400, "Bad request (e.g. a body that is not JSON)"), (404, "Not found"),
                         (413, "Request body too large"), (422, "Invalid parameters or body"),
                         (500, "Internal error")]
}


# ---- errors ---------------------------------------------------------------------------------
def error_response(status: int, message: str, headers: dict | None = None) -> Response:
    body = orjson.dumps({"error": {"status": status, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def validation_message(errors: list[dict]) -> tuple[int, str]:
    """Status and one sentence for pydantic's errors: where (field path) and what, never the input echoed."""
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return 400, f"the request body is not valid JSON ({reason}); send a JSON object such as {{\"tracks\": []}}."
    parts = []
    for e in errors[:5]:
        loc = [str(p) for p in e.get("loc", ())]
        where = ".".join(loc[1:]) if loc[:1] == ["body"] else ".".join(loc)
        if loc == ["body"] and e.get("type") == "missing":
            parts.append("the request body is empty; send a JSON object such as {\"tracks\": []}")
            continue
        parts.append(f"{where or 'the request body'}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "; ".join(parts) + more + "."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page or endpoint: {request.url.path}; the API is described at /docs."
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}."
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        status, message = validation_message(list(exc.errors()))
        return error_response(status, message)

    @app.exception_handler(SegueError)
    async def segue_error(request: Request, exc: SegueError) -> Response:
        return error_response(exc.status_code, str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; the server log has the details.")


# ---- middleware (plain ASGI: no per-request task or body copy) --------------------------------
class BodyLimit:
    """Answer 413 for request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"the request body is larger than {self.max_bytes} bytes; send fewer tracks."
        if declared is not None:
            if not declared.isdigit():
                return await error_response(400, "the Content-Length header is not a number.")(scope, receive, send)
            if int(declared) > self.max_bytes:
                return await error_response(413, too_large)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, too_large)  # turned into the JSON error by the handler above
            return message

        await self.app(scope, limited_receive, send)


class SecurityHeaders:
    """Content-Security-Policy and friends on every response (a looser CSP for the API docs pages)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else PAGE_CSP

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", csp.encode()),
                                      *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def json_response(obj) -> Response:
    """orjson straight to bytes; the route's response_model still documents the shape."""
    return Response(orjson.dumps(obj), media_type="application/json")


# ---- the app --------------------------------------------------------------------------------
def create_app(service: Service) -> FastAPI:
    """The FastAPI app answering for ``service`` (which it closes on shutdown)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # what is loaded stays for the process's life: kept out of the cyclic collector, whose full passes over
        # it (tens of ms at the serve benchmark's 280k songs) would otherwise land on whichever request ran one
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            service.close()

    app = FastAPIOffline(
        title="segue",
        version=__version__,
        description="Automatic playlist continuation: recommendations, track search and playlists from a segue "
                    "store. Errors always come as `{\"error\": {\"status\", \"message\"}}`.",
        responses=ERROR_RESPONSES,
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz():
        """Liveness: the model and store are loaded."""
        return json_response({"status": "ok"})

    @app.get("/v1/model", response_model=ModelResponse, tags=["service"])
    async def model_info():
        """The model being served: name, config, training summary, and the store it answers from."""
        return json_response(service.describe())

    @app.post("/v1/recommend", response_model=RecommendResponse, tags=["recommend"])
    async def recommend(request: RecommendRequest):
        """Tracks to add to a playlist, best first, seeds excluded. Unknown seed URIs do not fail the request:
        they are ignored and listed in `unknown_tracks`."""
        result = await service.recommend(request.tracks, request.title, request.k, request.explain)
        return json_response({"model": service.model.name, "tracks": result.tracks,
                              "unknown_tracks": result.unknown_tracks})

    @app.get("/v1/tracks/search", response_model=SearchResponse, tags=["tracks"])
    def search_tracks(q: Annotated[str, Query(min_length=1, max_length=MAX_TEXT,
                                              description="Words to find (prefixes of track, artist or album "
                                                          "name words; case and accents ignored).")],
                      limit: Annotated[int, Query(ge=1, le=50)] = 10):
        """Search as you type: tracks whose names have a word starting with every word of `q`, most popular
        first."""
        return json_response({"query": q, "tracks": service.search(q, limit)})

    @app.get("/v1/tracks/{uri}", response_model=Track, tags=["tracks"])
    async def track(uri: Annotated[str, PathParam(min_length=1, max_length=MAX_TEXT)]):
        """One track by URI."""
        return json_response(service.track(uri))

    @app.get("/v1/playlists/{pid}", response_model=PlaylistResponse, tags=["playlists"])
    async def playlist(pid: Annotated[int, PathParam(ge=0, le=2**62)]):
        """One playlist of the store by pid, with its tracks in order."""
        return json_response(service.playlist(pid))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    # StaticFiles resolves every path inside STATIC_DIR and refuses anything outside it (and symlinks out).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
