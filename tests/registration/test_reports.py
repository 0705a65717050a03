"""The aggregated HXL report: counts by site x displacement status x sex x age band, with
small cells suppressed and never a row per person."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Role
from tests.registration.factories import household, member
from tests.registration.support import Service

NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
HEADER = [
    "Site code", "Site name", "Country", "Admin 1 p-code", "Admin 2 p-code",
    "Displacement status", "Households", "Persons",
    "Female 0-4", "Female 5-17", "Female 18-59", "Female 60+",
    "Male 0-4", "Male 5-17", "Male 18-59", "Male 60+",
    "Other or unknown sex 0-4", "Other or unknown sex 5-17",
    "Other or unknown sex 18-59", "Other or unknown sex 60+",
]  # fmt: skip
HXL = [
    "#loc+code", "#loc+name", "#country+code", "#adm1+code", "#adm2+code",
    "#affected+type", "#affected+hh", "#affected+ind",
    "#affected+f+age0_4", "#affected+f+age5_17", "#affected+f+age18_59", "#affected+f+age60_plus",
    "#affected+m+age0_4", "#affected+m+age5_17", "#affected+m+age18_59", "#affected+m+age60_plus",
    "#affected+sex_other+age0_4", "#affected+sex_other+age5_17",
    "#affected+sex_other+age18_59", "#affected+sex_other+age60_plus",
]  # fmt: skip


@pytest.fixture(scope="module")
async def registered(service: Service) -> Service:
    """Chișinău: 6 refugee households (3 with a toddler), 2 idp ones, one deactivated and one
    erased refugee household; Palanca: 5 returnee households of older men and one registered
    ten days later."""
    service.clock.now = NOON
    for i in range(6):
        members = [member(sex="female", date_of_birth="1990-05-05")]
        if i < 3:
            members.append(member(sex="male", estimated_age=2, relationship="child"))
        await service.register(household(*members))
    for _ in range(2):
        await service.register(
            household(member(sex="unknown", date_of_birth="2010-01-01"), displacement_status="idp")
        )
    for action in ("deactivate", "erase"):
        result = await service.register(household(member(sex="female", date_of_birth="1990-05-05")))
        if action == "deactivate":
            await service.client.post(
                f"/v1/households/{result['id']}/deactivate",
                json={"reason": "relocated"},
                headers=service.field,
            )
        else:
            await service.client.delete(f"/v1/households/{result['id']}", headers=service.admin)
    for _ in range(5):
        await service.register(
            household(
                member(sex="male", date_of_birth="1950-03-03"),
                site_id="MDA-PAL",
                displacement_status="returnee",
            ),
            service.admin,
        )
    service.clock.advance(timedelta(days=10))
    await service.register(
        household(
            member(sex="male", date_of_birth="1950-03-03"),
            site_id="MDA-PAL",
            displacement_status="returnee",
        ),
        service.admin,
    )
    return service


async def report(
    service: Service, headers: dict[str, str] | None = None, **params: str
) -> list[list[str]]:
    response = await service.client.get(
        "/v1/reports/households.csv", params=params, headers=headers or service.admin
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text)))


async def test_the_report_counts_by_site_status_sex_and_age_band(registered: Service) -> None:
    rows = await report(registered)
    assert rows[0] == HEADER
    assert rows[1] == HXL
    data = {(row[0], row[5]): row for row in rows[2:]}
    assert set(data) == {("MDA-CHI", "refugee"), ("MDA-CHI", "idp"), ("MDA-PAL", "returnee")}

    refugees = dict(zip(HEADER, data[("MDA-CHI", "refugee")], strict=True))
    assert refugees["Site name"] == "Chișinău collective centre"
    assert (refugees["Country"], refugees["Admin 1 p-code"], refugees["Admin 2 p-code"]) == (
        "MDA",
        "MD01",
        "MD0101",
    )
    # 6 households (the deactivated and the erased one are not counted), 9 people
    assert (refugees["Households"], refugees["Persons"]) == ("6", "9")
    # 3 toddlers is a small cell: blank; then the 6 women are blanked too, or 9 - 6 gives it away
    assert refugees["Male 0-4"] == ""
    assert refugees["Female 18-59"] == ""
    assert refugees["Female 60+"] == "0"

    idp = dict(zip(HEADER, data[("MDA-CHI", "idp")], strict=True))
    assert (idp["Households"], idp["Persons"], idp["Other or unknown sex 5-17"]) == ("", "", "")

    returnees = dict(zip(HEADER, data[("MDA-PAL", "returnee")], strict=True))
    assert (returnees["Households"], returnees["Persons"], returnees["Male 60+"]) == ("6", "6", "6")


async def test_never_a_row_per_person(registered: Service) -> None:
    rows = await report(registered)
    people = int(await registered.scalar("SELECT count(*) FROM household_member"))
    assert len(rows) - 2 == 3 < people


async def test_the_report_filters_by_site_and_registration_dates(registered: Service) -> None:
    palanca = await report(registered, site_id="MDA-PAL")
    assert [row[0] for row in palanca[2:]] == ["MDA-PAL"]
    first_days = await report(registered, site_id="MDA-PAL", to=NOON.date().isoformat())
    assert first_days[2][6:8] == ["5", "5"]
    later = (NOON + timedelta(days=5)).date().isoformat()
    assert await report(registered, site_id="MDA-PAL", **{"from": later}) == [HEADER, HXL, [
        "MDA-PAL", "Palanca border crossing", "MDA", "MD34", "MD3401", "returnee", "", "",
        *["0"] * 7, "", *["0"] * 4,
    ]]  # fmt: skip
    nothing = await report(registered, **{"from": "2020-01-01", "to": "2020-12-31"})
    assert nothing == [HEADER, HXL]


async def test_who_may_see_the_report(registered: Service) -> None:
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER):
        rows = await report(registered, registered.headers(role, sites=["MDA-PAL"]))
        assert {row[0] for row in rows[2:]} == {"MDA-PAL"}, role
    everything = await report(registered, registered.headers(Role.ADMIN, sites=["MDA-PAL"]))
    assert {row[0] for row in everything[2:]} == {"MDA-CHI", "MDA-PAL"}
    provider = await registered.client.get(
        "/v1/reports/households.csv", headers=registered.headers(Role.PROVIDER)
    )
    assert provider.status_code == 403
    other_site = await registered.client.get(
        "/v1/reports/households.csv",
        params={"site_id": "MDA-CHI"},
        headers=registered.headers(Role.FIELD_STAFF, sites=["MDA-PAL"]),
    )
    assert other_site.status_code == 404
    backwards = await registered.client.get(
        "/v1/reports/households.csv",
        params={"from": "2025-02-01", "to": "2025-01-01"},
        headers=registered.admin,
    )
    assert backwards.status_code == 422


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ([0, 7, 12], ["0", "7", "12"]),
        ([3, 7, 12], ["", "", "12"]),  # one small cell: the smallest other one goes too
        ([3, 2, 12], ["", "", "12"]),  # two small cells hide each other
        ([4, 0, 0], ["", "0", "0"]),  # nothing else to hide: the total is blank as well
        ([5, 5], ["5", "5"]),
    ],
)
def test_small_cells_are_suppressed(counts: list[int], shown: list[str]) -> None:
    from services.registration.domain.reports import suppressed_cells

    assert suppressed_cells(counts, 5) == shown
