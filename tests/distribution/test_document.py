"""The request shapes' JSON Schema says what their validators refuse (issue 15, item 14):
what the document allows, the server accepts, and what the server refuses, the document
does not allow. Checked with the same JSON Schema validator schemathesis uses."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from services.distribution.models import (
    AdjustmentLine,
    ItemCreate,
    LocationIn,
    PrescriptionCreate,
    ReceiptLine,
    ShelterCreate,
)

ITEM = {"sku": "RICE-5KG", "name": "Rice", "category": "food", "unit": "bag"}
SHELTER = {"name": "Centre", "site_id": "MDA-CHI", "capacity_beds": 4, "floor_area_m2": "12.5"}

CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    # control characters (C0, DEL, C1), tabs and line breaks in one-line text
    (ItemCreate, {**ITEM, "name": "Rice\u0011"}),
    (ItemCreate, {**ITEM, "unit": "ba\u0085g"}),
    (PrescriptionCreate, {"reference": "RX\t12"}),
    # text that is only whitespace where some is required
    (ItemCreate, {**ITEM, "name": "   "}),
    # a P-code, also when it may be null
    (LocationIn, {"admin1": "MD01", "admin2": ""}),
    (LocationIn, {"admin1": "MD01", "admin2": "MD 02"}),
    # counts: positive, and an adjustment is never zero
    (ReceiptLine, {"sku": "RICE-5KG", "quantity": 0}),
    (ReceiptLine, {"sku": "RICE-5KG", "quantity": 1_000_001}),
    (AdjustmentLine, {"sku": "RICE-5KG", "quantity": 0, "reason": "lost"}),
    (AdjustmentLine, {"sku": "RICE-5KG", "quantity": 0.0, "reason": "lost"}),
    # a floor area: positive, at most 2 decimals, as a number or a string
    (ShelterCreate, {**SHELTER, "floor_area_m2": 5e-324}),
    (ShelterCreate, {**SHELTER, "floor_area_m2": 12.345}),
    (ShelterCreate, {**SHELTER, "floor_area_m2": "12.345"}),
    (ShelterCreate, {**SHELTER, "floor_area_m2": "0"}),
    (ShelterCreate, {**SHELTER, "floor_area_m2": "ten"}),
]
ACCEPTED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (ItemCreate, ITEM),
    (ItemCreate, {**ITEM, "name": "Riz complet \u00e9"}),
    (LocationIn, {"admin1": "MD01", "admin2": None}),
    (LocationIn, {"admin1": "MD01", "admin2": "MD0101"}),
    (ReceiptLine, {"sku": "RICE-5KG", "quantity": 5.0}),
    (AdjustmentLine, {"sku": "RICE-5KG", "quantity": -3, "reason": "lost"}),
    (ShelterCreate, SHELTER),
    # (not 0.07: JSON Schema validators divide floats, and 0.07 / 0.01 is not whole)
    (ShelterCreate, {**SHELTER, "floor_area_m2": 12.25}),
    (ShelterCreate, {**SHELTER, "floor_area_m2": "1000000.00"}),
]


def _document_allows(model: type[BaseModel], body: dict[str, Any]) -> bool:
    schema = model.model_json_schema(mode="validation")
    return jsonschema.Draft202012Validator(schema).is_valid(body)


@pytest.mark.parametrize(("model", "body"), CASES)
def test_what_the_server_refuses_the_document_does_not_allow(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)
    assert not _document_allows(model, body)


@pytest.mark.parametrize(("model", "body"), ACCEPTED)
def test_what_the_document_allows_the_server_accepts(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    assert _document_allows(model, body)
    model.model_validate(body)


def test_control_characters_keep_their_own_message() -> None:
    with pytest.raises(ValidationError) as refused:
        ItemCreate.model_validate({**ITEM, "name": "Rice\u0011"})
    assert refused.value.errors()[0]["type"] == "control_characters"
