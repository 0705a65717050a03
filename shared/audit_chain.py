"""The audit chain: each service's audit records linked by HMAC-SHA256, verifiable on the topic.

The relay links records as it publishes them (it alone knows the publication order), so a
missing, reordered or altered record breaks the chain that ``haven audit verify`` checks. Each
service keys its chain with its own secret: a service (or anyone) that can write the audit
topic but does not hold another service's key cannot forge a record of that service's chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

GENESIS_HASH = "0" * 64
CHAIN_FIELDS = ("sequence", "previous_hash", "hash")
DEVELOPMENT_KEY_PREFIX = "haven-DEVELOPMENT-audit-chain-"


def development_key(service: str) -> bytes:
    """The key a service's chain has when none is configured (development only: production
    refuses to start with it)."""
    return f"{DEVELOPMENT_KEY_PREFIX}{service}".encode()


class ChainKeys(Protocol):
    """The verifier's keys: the chain key of a service, or None when it has none."""

    def get(self, service: str, /) -> bytes | None: ...


class DevelopmentKeys:
    """Every service's development key (the local stack and tests)."""

    def get(self, service: str, /) -> bytes | None:
        return development_key(service)


def chain_hash(previous_hash: str, record: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256, keyed with the service's chain key, over the previous hash and the
    record's canonical JSON (without ``hash``)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, (previous_hash + canonical).encode(), hashlib.sha256).hexdigest()


def link(
    record: dict[str, Any], *, chain_id: str, sequence: int, previous_hash: str, key: bytes
) -> dict[str, Any]:
    """The record with its place in the chain filled in."""
    linked = {**record, "chain_id": chain_id, "sequence": sequence, "previous_hash": previous_hash}
    linked["hash"] = chain_hash(previous_hash, linked, key)
    return linked


@dataclass(frozen=True)
class ChainBreak:
    service: str
    chain_id: str
    sequence: int
    problem: str


def verify_chain(
    records: Iterable[Mapping[str, Any]], keys: ChainKeys | None = None
) -> list[ChainBreak]:
    """Check every chain (one per service database); return the first break of each.

    Records are AuditEvent payloads as published. Redelivered copies (same sequence and
    hash) are tolerated; a gap, a reordering, an altered record or one not made with the
    service's key is a break. ``keys`` defaults to the development keys.
    """
    keys = keys or DevelopmentKeys()
    chains: dict[tuple[str, str], dict[int, Mapping[str, Any]]] = {}
    breaks: list[ChainBreak] = []
    for record in records:
        key = (str(record.get("service")), str(record.get("chain_id")))
        sequence = record.get("sequence")
        if not isinstance(sequence, int) or record.get("chain_id") is None:
            breaks.append(ChainBreak(*key, 0, "record outside any chain"))
            continue
        seen = chains.setdefault(key, {})
        if sequence in seen and dict(seen[sequence]) != dict(record):
            breaks.append(ChainBreak(*key, sequence, "two different records with one sequence"))
        seen.setdefault(sequence, record)
    for (service, chain_id), chain in sorted(chains.items()):
        secret = keys.get(service)
        if secret is None:
            breaks.append(ChainBreak(service, chain_id, 0, "no key for this service's chain"))
            continue
        previous = GENESIS_HASH
        for expected, sequence in enumerate(sorted(chain), start=1):
            record = chain[sequence]
            problem = None
            if sequence != expected:
                problem, sequence = "missing record", expected
            elif record.get("previous_hash") != previous:
                problem = "previous_hash does not match"
            elif not hmac.compare_digest(
                chain_hash(previous, record, secret), str(record.get("hash"))
            ):
                problem = "record altered or forged (hash mismatch)"
            if problem:
                breaks.append(ChainBreak(service, chain_id, sequence, problem))
                break
            previous = str(record["hash"])
    return breaks
