"""A family registered with a phone and contact consent gets its confirmation, with the case
number, in its own language — delivered once."""

from __future__ import annotations

import json

from tests.e2e.flows import ADMIN, create_site, household_body, register
from tests.e2e.stack import Stack
from tests.support import eventually


async def test_registration_confirmation_is_delivered_once_in_ukrainian(stack: Stack) -> None:
    site = await create_site(stack)
    phone = "+37369123456"
    household = await register(
        stack,
        site,
        household_body(
            site, given="Оксана", family="Мельник", phone=phone, contact=True, language="uk"
        ),
    )
    found: dict[str, object] = {}

    async def delivered() -> bool:
        response = await stack["notifications"].get(
            "/v1/notifications", params={"household_id": household["id"]}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        items = [n for n in response.json()["items"] if n["event_type"] == "HouseholdRegistered"]
        if items and items[0]["status"] == "delivered":
            found.update(items[0])
        return bool(found)

    await eventually(delivered, timeout=60, what="the registration confirmation delivered")
    assert found["channel"] == "sms"
    assert found["language"] == "uk"
    assert phone not in json.dumps(found)  # the API masks the recipient
    sent = [
        json.loads(line)
        for line in (stack.state / "notifications" / "messages.jsonl").read_text().splitlines()
    ]
    mine = [m for m in sent if household["case_number"] in json.dumps(m, ensure_ascii=False)]
    assert len(mine) == 1, "exactly one message carries this case number"
