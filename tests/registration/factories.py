"""Request bodies for registration tests; random names unless a test needs real ones."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

_random = random.Random()


def random_name() -> str:
    """A made-up name no other test will produce (so no accidental duplicates)."""
    letters = string.ascii_lowercase
    return "".join(_random.choice(letters) for _ in range(9)).capitalize()


def random_birth_date() -> str:
    start = date(1950, 1, 1)
    return (start + timedelta(days=_random.randrange(0, 365 * 50))).isoformat()


def member(
    given: str | None = None,
    family: str | None = "",
    *,
    sex: str = "female",
    date_of_birth: str | None = "",
    estimated_age: int | None = None,
    relationship: str = "head",
    nationality: str = "MDA",
    documents: Sequence[dict[str, str]] = (),
    vulnerabilities: Sequence[str] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": given or random_name(),
        "sex": sex,
        "relationship": relationship,
        "nationality": nationality,
        "documents": list(documents),
        "vulnerabilities": list(vulnerabilities),
    }
    family_name = random_name() if family == "" else family
    if family_name is not None:
        body["family_name"] = family_name
    if estimated_age is not None:
        body["estimated_age"] = estimated_age
    else:
        body["date_of_birth"] = date_of_birth or random_birth_date()
    return body


def household(
    *members: dict[str, Any],
    site_id: str = "MDA-CHI",
    phone: str | None = None,
    contact: bool = False,
    referral_sharing: bool = False,
    language: str = "uk",
    displacement_status: str = "refugee",
    needs: Sequence[dict[str, str]] = (),
    admin1: str = "MD01",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": site_id,
        "location": {"admin1": admin1, "admin2": "MD0101", "settlement": "Chișinău"},
        "displacement_status": displacement_status,
        "arrival_date": "2025-03-01",
        "preferred_language": language,
        "consent": {
            "data_processing": True,
            "referral_sharing": referral_sharing,
            "contact": contact,
        },
        "members": list(members) or [member()],
        "needs": list(needs),
    }
    if phone is not None:
        body["phone"] = phone
    return body


def random_phone() -> str:
    return "+3736" + "".join(_random.choice(string.digits) for _ in range(7))


def passport(number: str | None = None, country: str = "UKR") -> dict[str, str]:
    return {
        "type": "passport",
        "number": number
        or "".join(_random.choice(string.ascii_uppercase) for _ in range(2))
        + "".join(_random.choice(string.digits) for _ in range(6)),
        "issuing_country": country,
    }
