"""Aggregated household report as HXL-tagged CSV, with small cells suppressed.

Layout: one row per site x displacement status (never one per person); a header row, then
the HXL hashtag row; then columns for households, persons, and persons by sex x age band:

    Site code, Site name, Country, Admin 1, Admin 2, Displacement status, Households, Persons,
    Female 0-4 ... Female 60+, Male 0-4 ... Male 60+, Other or unknown sex 0-4 ... 60+
    #loc+code, #loc+name, #country+code, #adm1+code, #adm2+code, #affected+type,
    #affected+hh, #affected+ind, #affected+f+age0_4 ... #affected+sex_other+age60_plus

Counted: households that are active or pending review, registered between ``from`` and
``to`` (inclusive, dates in the site's time zone); ages as of the report's day.

Suppression: a count from 1 to ``min_cell - 1`` is left **blank**; 0 is written as 0. When a
row has exactly one blank sex x age cell, the smallest other non-zero cell of that row is
blanked too, so that the persons total cannot give the hidden value away.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain.views import Actor
from shared.db import run
from shared.vocabulary import AgeBand, HouseholdStatus, Sex

COUNTED_STATUSES = (HouseholdStatus.ACTIVE, HouseholdStatus.PENDING_REVIEW)
AGE_BANDS = (AgeBand.AGE_0_4, AgeBand.AGE_5_17, AgeBand.AGE_18_59, AgeBand.AGE_60_PLUS)
HXL_AGE = {
    AgeBand.AGE_0_4: "age0_4",
    AgeBand.AGE_5_17: "age5_17",
    AgeBand.AGE_18_59: "age18_59",
    AgeBand.AGE_60_PLUS: "age60_plus",
}
SEX_GROUPS = (
    ("female", "f", "Female"),
    ("male", "m", "Male"),
    ("other", "sex_other", "Other or unknown sex"),
)
SEX_GROUP_OF = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.OTHER: "other", Sex.UNKNOWN: "other"}
FIXED_COLUMNS = (
    ("Site code", "#loc+code"),
    ("Site name", "#loc+name"),
    ("Country", "#country+code"),
    ("Admin 1 p-code", "#adm1+code"),
    ("Admin 2 p-code", "#adm2+code"),
    ("Displacement status", "#affected+type"),
    ("Households", "#affected+hh"),
    ("Persons", "#affected+ind"),
)
CELLS = [(group, band) for group, _, _ in SEX_GROUPS for band in AGE_BANDS]


def header_rows() -> tuple[list[str], list[str]]:
    names = [name for name, _ in FIXED_COLUMNS]
    tags = [tag for _, tag in FIXED_COLUMNS]
    for _, attribute, label in SEX_GROUPS:
        for band in AGE_BANDS:
            names.append(f"{label} {band.value}")
            tags.append(f"#affected+{attribute}+{HXL_AGE[band]}")
    return names, tags


def suppress(value: int, min_cell: int) -> str:
    return "" if 0 < value < min_cell else str(value)


def suppressed_cells(counts: list[int], min_cell: int) -> list[str]:
    """Primary suppression of small cells, plus one secondary cell when only one is hidden."""
    hidden = {i for i, v in enumerate(counts) if 0 < v < min_cell}
    if len(hidden) == 1:
        others = [(v, i) for i, v in enumerate(counts) if v > 0 and i not in hidden]
        if others:
            hidden.add(min(others)[1])
    return ["" if i in hidden else str(v) for i, v in enumerate(counts)]


async def households_csv(
    *,
    session: AsyncSession,
    actor: Actor,
    site_id: str | None,
    from_date: date | None,
    to_date: date | None,
    today: date,
    min_cell: int,
) -> str:
    params = {
        "statuses": [s.value for s in COUNTED_STATUSES],
        "site_id": site_id,
        "sites": sorted(actor.scope) if actor.scope is not None else None,
        "from_date": from_date,
        "to_date": to_date,
        "today": today,
    }
    # Rows of several columns (``run`` types them loosely as ``Row[Any]``).
    households: Sequence[Any] = (await run(session, queries.REPORT_HOUSEHOLDS, params)).all()
    people: Sequence[Any] = (await run(session, queries.REPORT_PERSONS, params)).all()
    persons: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for site, status, sex, band, count in people:
        persons[(site, status)][(SEX_GROUP_OF[Sex(sex)], band)] += int(count)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in header_rows():
        writer.writerow(row)
    for site, name, country, admin1, admin2, status, household_count in households:
        cells = persons[(site, status)]
        counts = [cells.get((group, band.value), 0) for group, band in CELLS]
        writer.writerow(
            [
                site,
                name,
                country,
                admin1,
                admin2 or "",
                status,
                suppress(int(household_count), min_cell),
                suppress(sum(counts), min_cell),
                *suppressed_cells(counts, min_cell),
            ]
        )
    return out.getvalue()
