"""HTTP routes of the registration service: parse, authorise, call the domain (one module per
resource).

Roles: field_staff register, read and change households of their own sites; caseworker and
manager read; admin does everything (sites, erasure). Another site's household is 404.
"""

from fastapi import APIRouter

from services.registration.api import duplicates, households, members, reports, sites

router = APIRouter()
for resource in (sites, households, members, duplicates, reports):
    router.include_router(resource.router)
