"""HTTP routes of the registration service: parse, authorise, call the domain, map errors."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["registration"])
