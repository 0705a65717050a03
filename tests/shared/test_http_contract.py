"""What the contract fuzzer found in the shared app factory (issue 15, item 14): control
characters in a path or query string are a 422 problem (not a 500), the documents say so on
every string parameter, and a 405 lists every method of the resource in `Allow`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from shared.http import CONTROL_CHARACTER_FREE, create_app
from shared.problems import PROBLEM_MEDIA_TYPE


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/things")
    async def list_things(q: str | None = None) -> dict[str, str | None]:
        return {"q": q}

    @router.post("/v1/things")
    async def add_thing() -> dict[str, str]:
        return {}

    @router.get("/v1/things/{name}")
    async def get_thing(name: str) -> dict[str, str]:
        return {"name": name}

    @router.delete("/v1/things/{name}")
    async def delete_thing(name: str) -> None:
        return None

    return router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service="t", title="t", version="1", routers=[_router()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.mark.parametrize("value", ["%00", "a%0Ab", "%1F", "%7F", "%C2%91"])
async def test_a_control_character_in_a_query_parameter_is_a_422_problem(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await client.get(f"/v1/things?q={value}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["type"] == "urn:haven:problem:validation-failed"
    assert body["errors"] == [
        {
            "field": "query.q",
            "message": "must not contain control characters",
            "type": "control_character",
        }
    ]


async def test_a_control_character_in_the_path_is_a_422_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/things/a%00b")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path"
    assert "\x00" not in response.json()["instance"]


async def test_ordinary_text_passes(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things", params={"q": "Chișinău café\t"[:-1]})
    assert response.status_code == 200
    assert response.json() == {"q": "Chișinău café"}


async def test_the_document_forbids_control_characters_in_string_parameters(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    (q,) = document["paths"]["/v1/things"]["get"]["parameters"]
    assert q["schema"]["anyOf"][0]["pattern"] == CONTROL_CHARACTER_FREE
    (name,) = document["paths"]["/v1/things/{name}"]["get"]["parameters"]
    assert name["schema"]["pattern"] == CONTROL_CHARACTER_FREE


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/things", {"GET", "POST"}),
        ("OPTIONS", "/v1/things/x", {"GET", "DELETE"}),
    ],
)
async def test_a_405_lists_every_method_of_the_resource(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert set(response.headers["allow"].split(", ")) == allowed


async def test_a_rule_refusal_has_the_documented_422_shape() -> None:
    """A 422 raised by a domain rule carries `errors` (ValidationProblem), empty if no field."""
    from shared.problems import UnprocessableContent

    body = UnprocessableContent("The period ends before it starts.").to_body("/v1/x")
    assert body["errors"] == []
    assert UnprocessableContent("x", errors=[{"field": "a"}]).to_body()["errors"] == [
        {"field": "a"}
    ]


async def test_the_document_declares_the_bearer_token(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("value", [5, 5.0])
def test_a_whole_number_is_what_the_documents_integer_allows(value: float) -> None:
    from pydantic import TypeAdapter

    from shared.validation import WholeNumber

    assert TypeAdapter(WholeNumber).validate_python(value) == 5


@pytest.mark.parametrize("value", ["5", True, 5.5])
def test_a_whole_number_is_not_a_string_a_boolean_or_a_fraction(value: object) -> None:
    from pydantic import TypeAdapter, ValidationError

    from shared.validation import WholeNumber

    with pytest.raises(ValidationError):
        TypeAdapter(WholeNumber).validate_python(value)
