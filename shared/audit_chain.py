"""The audit hash chain: each service's audit records linked by SHA-256, verifiable on the topic.

The relay links records as it publishes them (it alone knows the publication order), so a
missing, reordered or altered record breaks the chain that ``haven audit verify`` checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
CHAIN_FIELDS = ("sequence", "previous_hash", "hash")


def chain_hash(previous_hash: str, record: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the record's canonical JSON (without ``hash``)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((previous_hash + canonical).encode()).hexdigest()


def link(
    record: dict[str, Any], *, chain_id: str, sequence: int, previous_hash: str
) -> dict[str, Any]:
    """The record with its place in the chain filled in."""
    linked = {**record, "chain_id": chain_id, "sequence": sequence, "previous_hash": previous_hash}
    linked["hash"] = chain_hash(previous_hash, linked)
    return linked


@dataclass(frozen=True)
class ChainBreak:
    service: str
    chain_id: str
    sequence: int
    problem: str


def verify_chain(records: Iterable[Mapping[str, Any]]) -> list[ChainBreak]:
    """Check every chain (one per service database); return the first break of each.

    Records are AuditEvent payloads as published. Redelivered copies (same sequence and
    hash) are tolerated; a gap, a reordering or an altered record is a break.
    """
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
    for key, chain in sorted(chains.items()):
        previous = GENESIS_HASH
        for expected, sequence in enumerate(sorted(chain), start=1):
            record = chain[sequence]
            problem = None
            if sequence != expected:
                problem, sequence = "missing record", expected
            elif record.get("previous_hash") != previous:
                problem = "previous_hash does not match"
            elif chain_hash(previous, record) != record.get("hash"):
                problem = "record altered (hash mismatch)"
            if problem:
                breaks.append(ChainBreak(*key, sequence, problem))
                break
            previous = str(record["hash"])
    return breaks
