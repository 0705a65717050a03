"""HTTP routes of the referral service: parse, authorise, call the domain, map errors (one module
per resource).

Roles: the directory is the admins' (caseworkers and managers read it); caseworkers and
managers refer, read and cancel within their sites; managers also revoke and assign from the
queue; provider staff (role ``provider``, claim ``org``) see and act on their organisation's
referrals only, through a restricted view.
"""

from fastapi import APIRouter

from services.referral.api import consent, providers, referrals

router = APIRouter()
for resource in (providers, referrals, consent):
    router.include_router(resource.router)
