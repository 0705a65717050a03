"""HTTP routes of the distribution service: parse, authorise, call the domain, map errors."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["distribution"])
