"""Sites: reference data that admins add and everyone reads; the id prefixes case numbers."""

from shared.auth import Role
from tests.registration.factories import household, member
from tests.registration.support import Service

OCNITA = {
    "id": "MDA-OCN",
    "name": "Ocnița border crossing",
    "country": "MDA",
    "admin1": "MD26",
    "admin2": "MD2601",
    "timezone": "Europe/Chisinau",
}


async def test_admin_adds_a_site_once_and_everyone_reads_them(service: Service) -> None:
    created = await service.client.post("/v1/sites", json=OCNITA, headers=service.admin)
    assert created.status_code == 201
    assert created.json() == OCNITA

    again = await service.client.post("/v1/sites", json=OCNITA, headers=service.admin)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:haven:problem:site-exists"
    assert again.headers["content-type"] == "application/problem+json"

    for role in Role:
        listed = await service.client.get("/v1/sites", headers=service.headers(role))
        assert listed.status_code == 200, role
        assert [s["id"] for s in listed.json()["items"]] == ["MDA-CHI", "MDA-OCN", "MDA-PAL"]
        assert listed.json()["next_cursor"] is None
    assert (await service.client.get("/v1/sites")).status_code == 401


async def test_sites_are_listed_a_page_at_a_time(service: Service) -> None:
    for code in ("MDA-PG1", "MDA-PG2", "MDA-PG3"):
        site = OCNITA | {"id": code, "name": f"Paging {code}"}
        await service.client.post("/v1/sites", json=site, headers=service.admin)
    everything = (await service.client.get("/v1/sites", headers=service.field)).json()
    assert len(everything["items"]) >= 5
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await service.client.get("/v1/sites", params=params, headers=service.field)).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [s["id"] for s in everything["items"]] == sorted(seen)
    for bad in ({"limit": 0}, {"limit": 201}):
        response = await service.client.get("/v1/sites", params=bad, headers=service.field)
        assert response.status_code == 422, bad
    invalid = await service.client.get(
        "/v1/sites", params={"cursor": "not-a-cursor"}, headers=service.field
    )
    assert invalid.status_code == 400
    assert invalid.json()["type"] == "urn:haven:problem:invalid-cursor"


async def test_only_admins_add_sites(service: Service) -> None:
    site = OCNITA | {"id": "MDA-XYZ"}
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.PROVIDER):
        response = await service.client.post("/v1/sites", json=site, headers=service.headers(role))
        assert response.status_code == 403, role
    assert (await service.client.post("/v1/sites", json=site)).status_code == 401


async def test_site_fields_are_validated(service: Service) -> None:
    bad = {
        "id": "chisinau",
        "name": "",
        "country": "MOL",
        "admin1": "md-01",
        "timezone": "Europe/Kishinev-Central",
        "colour": "blue",
    }
    response = await service.client.post("/v1/sites", json=bad, headers=service.admin)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"id", "name", "country", "admin1", "timezone", "colour"}


async def test_each_site_numbers_its_cases_from_its_own_sequence(service: Service) -> None:
    site = OCNITA | {"id": "MDA-SEQ", "name": "Sequence test"}
    assert (
        await service.client.post("/v1/sites", json=site, headers=service.admin)
    ).status_code == 201
    numbers = [
        (await service.register(household(member(), site_id="MDA-SEQ"), service.admin))[
            "case_number"
        ]
        for _ in range(3)
    ]
    assert numbers == ["MDA-SEQ-000001", "MDA-SEQ-000002", "MDA-SEQ-000003"]


async def test_the_api_is_documented(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    assert {
        "/v1/sites",
        "/v1/households",
        "/v1/households/{household_id}",
        "/v1/households/{household_id}/members",
        "/v1/households/{household_id}/members/{member_id}",
        "/v1/households/{household_id}/needs",
        "/v1/households/{household_id}/deactivate",
        "/v1/duplicates",
        "/v1/duplicates/{review_id}/resolve",
        "/v1/reports/households.csv",
    } <= set(document["paths"])
    register = document["paths"]["/v1/households"]["post"]
    assert "RegistrationResult" in str(register["responses"]["201"])
    assert "409" in register["responses"]
    asyncapi = (await service.client.get("/asyncapi.json")).json()
    assert "HouseholdRegistered" in asyncapi["components"]["schemas"]
