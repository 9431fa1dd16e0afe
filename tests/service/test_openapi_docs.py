"""The OpenAPI schema documents every operation: who may call it and an example answer
(checked against the operation's response model), JSON bodies with an example, and image
uploads as binary files; /docs and /redoc load nothing from other hosts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from screener.service import routes
from screener.service.app import create_app
from screener.service.openapi_docs import OPERATIONS
from screener.service.settings import ServiceSettings

APP = create_app(ServiceSettings())
SCHEMA = APP.openapi()
OPERATION_LIST = [
    (f"{method.upper()} {path}", operation)
    for path, operations in SCHEMA["paths"].items()
    for method, operation in operations.items()
]
ROLE_WORDS = re.compile(r"platform|rights holder|operator|admin|anyone|any valid key")


def test_every_operation_is_in_the_table_and_the_table_names_only_operations() -> None:
    names = {name for name, _ in OPERATION_LIST}
    assert len(names) >= 40
    assert names == set(OPERATIONS), names ^ set(OPERATIONS)


@pytest.mark.parametrize(("name", "operation"), OPERATION_LIST, ids=[n for n, _ in OPERATION_LIST])
def test_every_operation_says_who_may_call_it_and_shows_an_example(
    name: str, operation: dict[str, Any]
) -> None:
    description = operation["description"]
    assert description.startswith("**Who may call:** ")
    assert ROLE_WORDS.search(description.split("\n", 1)[0]), description
    success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
    examples = [m["example"] for m in success["content"].values() if "example" in m]
    assert examples, f"{name}: no response example"
    body = operation.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        assert "example" in body["application/json"], f"{name}: no request example"


ROUTES = [
    route
    for module in vars(routes).values()
    if isinstance(getattr(module, "router", None), APIRouter)
    for route in module.router.routes
    if isinstance(route, APIRoute)
]


def _route(name: str) -> APIRoute:
    method, path = name.split(" ", 1)
    return next(r for r in ROUTES if r.path == path and method in (r.methods or ()))


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_the_examples_are_what_the_operation_answers_and_accepts(name: str) -> None:
    route = _route(name)
    doc = OPERATIONS[name]
    if route.response_model is not None:
        TypeAdapter(route.response_model).validate_python(doc.example)
    if doc.request is not None:
        assert route.body_field is not None, name
        annotation = route.body_field.field_info.annotation
        assert annotation is not None, name
        TypeAdapter(annotation).validate_python(doc.request)


def test_image_uploads_are_binary_files() -> None:
    bodies = SCHEMA["components"]["schemas"]
    check = bodies["Body_check_v1_check_post"]["properties"]["images"]["items"]
    assert check == {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/octet-stream",
    }
    uploads = [
        (name, field)
        for name, body in bodies.items()
        if name.startswith("Body_")
        for field in re.findall(r"'contentMediaType': 'application/octet-stream'[^}]*", str(body))
    ]
    assert len(uploads) >= 6
    assert all("'format': 'binary'" in field for _, field in uploads), uploads


def test_the_docs_pages_load_their_assets_from_this_service_only() -> None:
    client = TestClient(APP)
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert sources, html
        assert all(s.startswith("/") for s in sources), sources
        assert "googleapis" not in html and "cdn.jsdelivr" not in html
        for source in sources:
            if source.startswith("/docs-assets/"):
                assert client.get(source).status_code == 200, source
