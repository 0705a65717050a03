"""The distribution report: by day x site x item category, JSON or CSV with an HXL row."""

from __future__ import annotations

import csv
import io

from services.distribution.models import ItemCategory
from shared.auth import Role
from tests.distribution.support import Site, make_site
from tests.support.tokens import auth_headers


async def test_the_report_aggregates_recorded_distributions_by_day_site_and_category(
    site: Site,
) -> None:
    food = await site.stocked(ItemCategory.FOOD, 50)
    kits = await site.stocked(ItemCategory.HYGIENE, 50)
    a, b, c = [await site.household(size=4) for _ in range(3)]
    await site.distribute(a, [{"sku": food, "quantity": 1}, {"sku": kits, "quantity": 4}])
    await site.distribute(b, [{"sku": food, "quantity": 1}])
    voided = (await site.distribute(c, [{"sku": food, "quantity": 1}])).json()
    await site.client.post(
        f"/v1/distributions/{voided['id']}/void", json={"reason": "duplicate"}, headers=site.manager
    )
    site.service.clock.advance(days=1)
    await site.distribute(c, [{"sku": kits, "quantity": 2}])
    other = await make_site(site.service)
    other_food = await other.stocked(ItemCategory.FOOD, 5)
    await other.distribute(await other.household(), [{"sku": other_food, "quantity": 1}])

    params = {"from": "2025-03-10", "to": "2025-03-11"}
    response = await site.client.get(
        "/v1/reports/distributions", params=params, headers=site.manager
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["from"], report["to"], report["site_ids"]) == (
        "2025-03-10",
        "2025-03-11",
        [site.site_id],
    )
    assert [
        (r["day"], r["category"], r["distributions"], r["households"], r["quantity"])
        for r in report["rows"]
    ] == [
        ("2025-03-10", "food", 2, 2, 2),
        ("2025-03-10", "hygiene", 1, 1, 4),
        ("2025-03-11", "hygiene", 1, 1, 2),
    ]

    as_csv = await site.client.get(
        "/v1/reports/distributions", params=params, headers={**site.manager, "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["date", "site_id", "category", "distributions", "households", "quantity"]
    assert rows[1] == [
        "#date",
        "#loc+code",
        "#item+type",
        "#indicator+distributions+num",
        "#reached+hh",
        "#item+num",
    ]
    assert rows[2] == ["2025-03-10", site.site_id, "food", "2", "2", "2"]
    assert len(rows) == 5
    by_param = await site.client.get(
        "/v1/reports/distributions", params={**params, "format": "csv"}, headers=site.manager
    )
    assert by_param.text == as_csv.text

    both = auth_headers(Role.MANAGER, sites=[site.site_id, other.site_id])
    wide = (await site.client.get("/v1/reports/distributions", params=params, headers=both)).json()
    assert {r["site_id"] for r in wide["rows"]} == {site.site_id, other.site_id}
    only_other = await site.client.get(
        "/v1/reports/distributions", params={**params, "site_id": other.site_id}, headers=both
    )
    assert {r["site_id"] for r in only_other.json()["rows"]} == {other.site_id}


async def test_reports_are_for_managers_of_their_sites_over_a_sane_period(site: Site) -> None:
    url = "/v1/reports/distributions"
    assert (await site.client.get(url, headers=site.operator)).status_code == 403
    assert (
        await site.client.get(url, params={"site_id": "ELSEWHERE"}, headers=site.manager)
    ).status_code == 404
    backwards = await site.client.get(
        url, params={"from": "2025-03-10", "to": "2025-03-01"}, headers=site.manager
    )
    assert backwards.status_code == 422 and backwards.json()["type"].endswith("invalid-period")
    too_long = await site.client.get(
        url, params={"from": "2020-01-01", "to": "2025-03-01"}, headers=site.manager
    )
    assert too_long.status_code == 422
    not_iso = await site.client.get(url, params={"from": "March 1"}, headers=site.manager)
    assert not_iso.status_code == 422
    default = await site.client.get(url, headers=site.manager)
    assert default.status_code == 200
    assert (default.json()["from"], default.json()["to"]) == ("2025-02-08", "2025-03-10")
