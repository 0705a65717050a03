"""Problem details: the one mapping from errors to application/problem+json."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, field_validator

from shared.problems import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    NotFound,
    Problem,
    TooManyRequests,
    install_problem_handlers,
)


class InsufficientStock(Conflict):
    type_slug = "insufficient-stock"
    title = "Not enough stock"


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: str

    @field_validator("given_name")
    @classmethod
    def not_placeholder(cls, value: str) -> str:
        if value == "unknown":
            raise ValueError("write the name as the person gives it")
        return value


class Household(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[Member]


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/households")
    async def register(household: Household) -> dict[str, int]:
        return {"members": len(household.members)}

    @app.get("/households")
    async def search(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/stock")
    async def stock() -> None:
        raise InsufficientStock(
            "Only 3 of 5 kits left.", shortfalls=[{"item": "kit", "missing": 2}]
        )

    @app.get("/busy")
    async def busy() -> None:
        raise TooManyRequests("Slow down.", headers={"Retry-After": "30"})

    @app.get("/legacy")
    async def legacy() -> None:
        raise HTTPException(404, "Household not found")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("duplicate key (phone)=(+254700000001)")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Without create_app's middleware, starlette re-raises unhandled errors after answering.
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:haven:problem:{slug}"
    assert body["status"] == status
    return body


def test_problem_body_has_rfc9457_members_and_extensions() -> None:
    problem = InsufficientStock("Only 3 of 5 kits left.", shortfalls=[{"item": "kit"}])
    assert problem.to_body("/v1/distributions") == {
        "type": "urn:haven:problem:insufficient-stock",
        "title": "Not enough stock",
        "status": 409,
        "detail": "Only 3 of 5 kits left.",
        "instance": "/v1/distributions",
        "shortfalls": [{"item": "kit"}],
    }
    assert isinstance(problem, Conflict)
    assert NotFound().detail == "Not found"  # detail defaults to the title


def test_extensions_cannot_overwrite_standard_members() -> None:
    with pytest.raises(TypeError, match="status"):
        Conflict("x", status=200)


async def test_domain_problem_maps_to_its_status_with_extensions(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/stock"), 409, "insufficient-stock")
    assert body["title"] == "Not enough stock"
    assert body["instance"] == "/stock"
    assert body["shortfalls"] == [{"item": "kit", "missing": 2}]


async def test_problem_headers_are_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/busy")
    assert_problem(response, 429, "too-many-requests")
    assert response.headers["retry-after"] == "30"


async def test_validation_errors_name_fields_by_path(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/households", json={"members": [{"given_name": "Amina"}, {"given_name": 5}, {}]}
    )
    body = assert_problem(response, 422, "validation-failed")
    errors = {e["field"]: e for e in body["errors"]}  # type: ignore[attr-defined]
    assert set(errors) == {"members[1].given_name", "members[2].given_name"}
    assert errors["members[2].given_name"]["type"] == "missing"
    assert errors["members[1].given_name"]["message"] == "Input should be a valid string"
    assert body["detail"] == "2 fields need correcting."
    assert "Amina" not in response.text  # inputs are not echoed back


async def test_unknown_fields_are_reported_as_such(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/households", json={"members": [{"given_name": "A", "nickname": "B"}], "size": 1}
    )
    body = assert_problem(response, 422, "validation-failed")
    assert sorted((e["field"], e["message"]) for e in body["errors"]) == [  # type: ignore[attr-defined]
        ("members[0].nickname", "unknown field"),
        ("size", "unknown field"),
    ]


async def test_value_error_prefix_is_removed(client: httpx.AsyncClient) -> None:
    response = await client.post("/households", json={"members": [{"given_name": "unknown"}]})
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [
        {
            "field": "members[0].given_name",
            "message": "write the name as the person gives it",
            "type": "value_error",
        }
    ]


async def test_query_parameter_errors_keep_their_location(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/households?limit=many"), 422, "validation-failed")
    assert [e["field"] for e in body["errors"]] == ["query.limit"]  # type: ignore[attr-defined]


async def test_missing_body_is_reported_on_the_body(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/households"), 422, "validation-failed")
    assert body["errors"][0]["field"] == "body"  # type: ignore[index]


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/households", content=b'{"members": [', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400, "invalid-json")
    assert "not valid JSON" in str(body["detail"])


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404, "not-found")
    response = await client.delete("/households")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"]  # starlette names the methods of the first match


async def test_http_exception_detail_is_kept(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/legacy"), 404, "not-found")
    assert body["detail"] == "Household not found"


async def test_unexpected_error_is_a_generic_500_and_logged_with_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="shared.problems"):
        response = await client.get("/boom?phone=%2B254700000001")
    body = assert_problem(response, 500, "internal-error")
    assert "phone" not in response.text and "254700000001" not in response.text
    assert "RuntimeError" not in response.text
    [record] = [r for r in caplog.records if r.name == "shared.problems"]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "/boom" in record.getMessage()
    assert "phone" not in record.getMessage()  # the query string is never logged
    assert body["instance"] == "/boom"


def test_for_status_uses_known_classes_then_the_http_phrase() -> None:
    assert type(Problem.for_status(404)) is NotFound
    gone = Problem.for_status(410, "Archived.")
    assert (gone.status, gone.type_slug, gone.title, gone.detail) == (
        410,
        "gone",
        "Gone",
        "Archived.",
    )
