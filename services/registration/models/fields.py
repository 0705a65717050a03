"""Validated value types of registration's requests: codes, names, dates, sites, phones,
said in the OpenAPI document as the validators check them."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field

from shared.validation import CleanText

MAX_MEMBERS = 30
MAX_DOCUMENTS = 10
MAX_AGE_YEARS = 120
NAME_MAX_LENGTH = 100
DOCUMENT_NUMBER_MIN_CHARACTERS = 2
SITE_ID_PATTERN = r"^[A-Z]{3}-[A-Z0-9]{2,10}$"
PCODE_PATTERN = r"^[A-Z]{2,3}[A-Z0-9]{0,12}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# ICAO Doc 9303 codes for people without a nationality or with an unknown one.
ICAO_SPECIAL_NATIONALITIES = frozenset({"XXA", "XXB", "XXC", "XXX"})
# A device's "today" may be a day ahead of UTC; dates up to then are not "in the future".
DATE_SKEW = timedelta(days=1)
CONSENT_CLOCK_SKEW = timedelta(minutes=10)
NOT_TIME_ZONES = frozenset({"localtime", "posixrules", "Factory"})


# --- validated value types -----------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@cache
def _alpha3_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries) | ICAO_SPECIAL_NATIONALITIES


@cache
def _alpha2_languages() -> frozenset[str]:
    return frozenset(lang.alpha_2 for lang in pycountry.languages if getattr(lang, "alpha_2", None))


def _country_code(value: str) -> str:
    if value not in _alpha3_codes():
        raise ValueError(
            "must be an ISO 3166-1 alpha-3 country code such as MDA or UKR "
            "(XXA stateless, XXX unknown)"
        )
    return value


def _country(value: str) -> str:
    if value not in _alpha3_codes() - ICAO_SPECIAL_NATIONALITIES:
        raise ValueError("must be an ISO 3166-1 alpha-3 country code such as MDA")
    return value


def _language_code(value: str) -> str:
    if value not in _alpha2_languages():
        raise ValueError("must be a two-letter ISO 639-1 language code such as uk, ro or ar")
    return value


@cache
def _timezones() -> frozenset[str]:
    # Not zones but files of the system's zoneinfo directory, unknown to PostgreSQL (a site
    # in "localtime" made every report a 500).
    return frozenset(zoneinfo.available_timezones()) - NOT_TIME_ZONES


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("must be an IANA time zone such as Europe/Chisinau")
    return value


# Space, hyphen, full stop, apostrophes, and the zero-width (non-)joiners of Persian and Dari.
_NAME_PUNCTUATION = frozenset(" -.'\u2019\u02bc\u200c\u200d")


# What `_person_name` checks, said in the document (JSON Schema regexes are Unicode-aware):
# letters, combining marks and the punctuation above, with at least one letter.
_NAME_CHARACTER = r"[\p{L}\p{M} .'\u2019\u02bc\u200c\u200d-]"
PERSON_NAME_PATTERN = "^" + _NAME_CHARACTER + r"*\p{L}" + _NAME_CHARACTER + "*$"


def _person_name(value: str) -> str:
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    for ch in value:
        if not (
            ch.isalpha() or ch in _NAME_PUNCTUATION or unicodedata.category(ch).startswith("M")
        ):
            raise ValueError(
                "may contain only letters, spaces, hyphens, apostrophes and full stops"
            )
    return re.sub(r" {2,}", " ", value)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """A date as its document says, ``2025-03-01``: not a number read as a Unix timestamp."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date such as 2025-03-01")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date written ``YYYY-MM-DD`` (pydantic alone also reads ``0`` as 1970-01-01)."""


_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}.*")


def _iso_date_time(value: Any) -> Any:
    """A date-time as RFC 3339 writes it: not a number read as a Unix timestamp."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.fullmatch(value)):
        return value
    raise ValueError("must be a date and time such as 2025-03-01T10:00:00+02:00")


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time)]


def _today_anywhere() -> date:
    """The latest date it is anywhere on Earth: no valid date lies after it."""
    return (datetime.now(UTC) + DATE_SKEW).date()


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > _today_anywhere():
        raise ValueError("must not be in the future")
    return value


# Codes are documented as the enumerations they are checked against (upper or lower case as
# written there; the server also takes the other case). Constraints come before validators:
# pydantic leaves out of the JSON Schema a constraint that follows a validator.
CountryCode = Annotated[
    str,
    Field(json_schema_extra={"enum": sorted(_alpha3_codes())}),
    BeforeValidator(_upper),
    AfterValidator(_country_code),
]
SiteCountry = Annotated[
    str,
    Field(json_schema_extra={"enum": sorted(_alpha3_codes() - ICAO_SPECIAL_NATIONALITIES)}),
    BeforeValidator(_upper),
    AfterValidator(_country),
]
LanguageCode = Annotated[
    str,
    Field(json_schema_extra={"enum": sorted(_alpha2_languages())}),
    BeforeValidator(_lower),
    AfterValidator(_language_code),
]
TimeZone = Annotated[
    str, Field(json_schema_extra={"enum": sorted(_timezones())}), AfterValidator(_timezone)
]


def _either_case(pattern: str) -> str:
    """An upper-case pattern as the document gives it: the server upper-cases first."""
    return pattern.replace("[A-Z0-9]", "[A-Za-z0-9]").replace("[A-Z]", "[A-Za-z]")


PCode = Annotated[
    str,
    Field(
        pattern=PCODE_PATTERN,
        max_length=15,
        json_schema_extra={"pattern": _either_case(PCODE_PATTERN)},
    ),
    BeforeValidator(_upper),
]
SiteId = Annotated[
    str,
    Field(pattern=SITE_ID_PATTERN, json_schema_extra={"pattern": _either_case(SITE_ID_PATTERN)}),
    BeforeValidator(_upper),
]
PhoneNumber = Annotated[
    str,
    Field(pattern=E164_PATTERN, description="E.164, e.g. +37369123456"),
    BeforeValidator(lambda v: re.sub(r"[ \-().]", "", v) if isinstance(v, str) else v),
]
PersonName = Annotated[
    CleanText,
    Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        json_schema_extra={"pattern": PERSON_NAME_PATTERN},
    ),
    AfterValidator(_person_name),
]
PastDate = Annotated[IsoDate, AfterValidator(_not_in_future)]


# CleanText as the document says it: one line (no control characters), not only spaces.
_ONE_LINE = r"[^\x00-\x1f\x7f-\x9f]"
ONE_LINE_PATTERN = "^" + _ONE_LINE + r"*[^\s\x00-\x1f\x7f-\x9f]" + _ONE_LINE + "*$"
OneLine = Annotated[CleanText, Field(json_schema_extra={"pattern": ONE_LINE_PATTERN})]


# --- sites ---------------------------------------------------------------------------------
