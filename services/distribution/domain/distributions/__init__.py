"""Distributions: recording one (``record``), voiding one (``void``), and reading them."""

from services.distribution.domain.distributions.reads import (
    get_distribution,
    list_distributions,
    render,
)
from services.distribution.domain.distributions.record import (
    DistributionOutcome,
    fingerprint,
    record,
)
from services.distribution.domain.distributions.void import void

__all__ = [
    "DistributionOutcome",
    "fingerprint",
    "get_distribution",
    "list_distributions",
    "record",
    "render",
    "void",
]
