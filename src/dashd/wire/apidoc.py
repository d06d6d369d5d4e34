"""`GET /api/openapi.yaml`: the OpenAPI 3.1 description of the HTTP API,
shipped inside the package (src/dashd/wire/openapi.yaml; docs/openapi.yaml
links to it) and read once at start."""

from __future__ import annotations

from importlib import resources

from twisted.web.server import Request

from dashd.wire.web import JsonLeaf, _headers

SPEC_FILE = "openapi.yaml"


def openapi_document() -> bytes:
    """The description as shipped."""
    return resources.files("dashd.wire").joinpath(SPEC_FILE).read_bytes()


class OpenApiResource(JsonLeaf):
    """Serves the description; no authentication (it holds no data)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.document = openapi_document()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/yaml")
        request.setHeader(b"Cache-Control", b"no-cache")
        _headers(request)
        return self.document
