"""Bounds on input, patterns, and the vocabularies of the distribution service."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, get_args

from pydantic import BeforeValidator, Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shared.http import CONTROL_CHARACTER_FREE
from shared.validation import CleanText, WholeNumber

# --- bounds on input -----------------------------------------------------------------------

MAX_RECEIPT_QUANTITY = 1_000_000
"""Largest quantity of one receipt, transfer or adjustment line."""
MAX_LINE_QUANTITY = 10_000
"""Largest quantity of one distribution line."""
MAX_LINES = 100
"""Most lines in one receipt, transfer, adjustment or distribution."""
MAX_BEDS = 1_000
MAX_FLOOR_AREA_M2 = Decimal("1000000")

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
PCODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
BATCH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,63}$"
CLIENT_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

NON_BLANK_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""One line with something besides whitespace: what `Text` with a ``min_length`` accepts
(surrounding whitespace is trimmed before the length is checked)."""
AREA_PATTERN = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,5}(\.[0-9]{1,2})?|1000000(\.00?)?)$"
"""A floor area written as a string: positive, at most 1 000 000, at most 2 decimals."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_only(value: Any) -> Any:
    """Dates are ISO 8601 calendar dates (``2025-03-31``): no timestamps, no numbers."""
    if isinstance(value, date | datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")
    return value


class _StatesCleanText:
    """Says in the document what `CleanText` refuses: control characters (tabs and line
    breaks included) and, where a length is required, text that is only whitespace. The
    server's own messages stay (a pattern checked by the server would replace them)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if "pattern" not in schema:
            blank_refused = schema.get("minLength", 0) >= 1
            schema["pattern"] = NON_BLANK_TEXT if blank_refused else CONTROL_CHARACTER_FREE
        return schema


Text = Annotated[CleanText, _StatesCleanText()]
"""`CleanText` as the document describes it (a pattern for its control characters)."""
PCode = Annotated[str, Field(pattern=PCODE_PATTERN, examples=["MD01"])]
"""A P-code (admin1, admin2): ASCII letters, digits, ``_`` and ``-``."""
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
Sku = Annotated[str, Field(pattern=SKU_PATTERN, examples=["FOOD-PARCEL-15KG"])]
SiteId = Annotated[str, Field(pattern=SITE_PATTERN, examples=["MDA-CHI"])]
Batch = Annotated[str, Field(pattern=BATCH_PATTERN, examples=["LOT-2025-07"])]
_WHOLE_NUMBER = get_args(WholeNumber)[1:]  # its validator and strictness
# The bounds come before WholeNumber's validator: after it, pydantic would check them but
# write them into the document as ``gt``/``le``, which JSON Schema does not know.
Quantity = Annotated[int, Field(gt=0, le=MAX_RECEIPT_QUANTITY), *_WHOLE_NUMBER]
LineQuantity = Annotated[int, Field(gt=0, le=MAX_LINE_QUANTITY), *_WHOLE_NUMBER]
Reference = Annotated[Text, Field(min_length=1, max_length=120)]
FloorArea = Annotated[
    Decimal,
    Field(gt=0, le=MAX_FLOOR_AREA_M2, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": int(MAX_FLOOR_AREA_M2),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": AREA_PATTERN},
            ],
            "description": "Square metres, at most 2 decimals.",
        }
    ),
]


# --- vocabularies --------------------------------------------------------------------------


class ItemCategory(StrEnum):
    FOOD = "food"
    HYGIENE = "hygiene"
    NON_FOOD_ITEM = "non_food_item"
    SHELTER_MATERIAL = "shelter_material"
    MEDICATION = "medication"


class LedgerKind(StrEnum):
    RECEIPT = "receipt"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    ADJUSTMENT = "adjustment"
    ISSUE = "issue"
    VOID_REVERSAL = "void_reversal"
    EXPIRY_WRITE_OFF = "expiry_write_off"


class AdjustmentReason(StrEnum):
    COUNT_CORRECTION = "count_correction"
    DAMAGED = "damaged"
    LOST = "lost"
    STOLEN = "stolen"
    FOUND = "found"
    RETURNED = "returned"
    QUALITY_RECALL = "quality_recall"


class DistributionStatus(StrEnum):
    RECORDED = "recorded"
    VOIDED = "voided"


class VoidReason(StrEnum):
    RECORDED_IN_ERROR = "recorded_in_error"
    WRONG_HOUSEHOLD = "wrong_household"
    WRONG_QUANTITY = "wrong_quantity"
    ITEMS_RETURNED = "items_returned"
    DUPLICATE = "duplicate"


class CheckOutReason(StrEnum):
    CHECKED_OUT = "checked_out"
    MOVED = "moved"
    LEFT_WITHOUT_NOTICE = "left_without_notice"


class ReleaseReason(StrEnum):
    """Why beds were freed: an operator's check-out reason, or the household's erasure."""

    CHECKED_OUT = "checked_out"
    MOVED = "moved"
    LEFT_WITHOUT_NOTICE = "left_without_notice"
    HOUSEHOLD_ERASED = "household_erased"
