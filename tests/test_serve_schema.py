"""Property-based API test: schemathesis generates requests from the app's own OpenAPI schema (valid and invalid,
bounded in number) and checks that no answer is a 5xx and every answer matches the schema (status code,
content type, body), and that invalid requests are rejected."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from segue.data.store import build_store
from segue.models.base import get_model_class
from segue.serve.app import create_app
from segue.serve.service import Service

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from segue.data.synth import generate_playlists

    root = tmp_path_factory.mktemp("schema")
    store = build_store(list(generate_playlists(120, seed=11)), root / "store")
    get_model_class("popular")().fit(store).save(root / "popular")
    service = Service.load(root / "popular")
    yield create_app(service)
    service.close()


WITHOUT_INPUT = ["GET /healthz", "GET /v1/model"]  # nothing to make invalid
WITH_INPUT = ["POST /v1/recommend", "GET /v1/tracks/search", "GET /v1/tracks/{uri}", "GET /v1/playlists/{pid}"]
CASES = [(op, "positive") for op in WITHOUT_INPUT + WITH_INPUT] + [(op, "negative") for op in WITH_INPUT]


@pytest.mark.parametrize("operation, mode", CASES)
def test_api_conforms_to_its_schema(app, operation, mode):
    # The strategies are driven directly (not schemathesis' pytest plugin, whose lazy fixtures break on pytest 9).
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in schema.get_all_operations())}
    assert set(found) == set(WITHOUT_INPUT + WITH_INPUT)  # a new endpoint must be added here

    @given(case=found[operation].as_strategy(GenerationMode(mode)))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        case.call_and_validate(checks=CHECKS)

    check()
