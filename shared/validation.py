"""Strict request models: unknown fields refused, text trimmed and normalised.

Usage::

    class HouseholdCreate(StrictModel):
        head_name: CleanText = Field(min_length=1, max_length=200)
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = ["CleanText", "StrictModel"]

# C0 controls, DEL and C1 controls. Tabs and line breaks are refused too: CleanText is for
# one-line values (names, places, references); free-form notes need their own type.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are errors, surrounding whitespace is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _clean_text(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise PydanticCustomError(
            "control_characters",
            "must not contain control characters such as tabs or line breaks",
        )
    return unicodedata.normalize("NFC", value)


CleanText = Annotated[str, AfterValidator(_clean_text)]
"""One-line text in Unicode NFC, so the same name typed on two devices compares equal."""


def _whole_number(value: object) -> object:
    """A JSON number with no fractional part is a whole number (JSON Schema's ``integer``
    accepts ``5.0``); a boolean or a string is not one."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("whole_number", "must be a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number), Field(strict=True)]
"""An integer as its OpenAPI ``integer`` says: ``5`` and ``5.0``, never ``"5"``, ``true``
or ``5.5`` (strict ints refused ``5.0``, which the document allows)."""
