"""The audit hash chain: linking, and detecting gaps, reorderings and alterations."""

from typing import Any

from shared.audit_chain import GENESIS_HASH, chain_hash, link, verify_chain


def chain(n: int, *, chain_id: str = "c1", service: str = "registration") -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    previous = GENESIS_HASH
    for i in range(1, n + 1):
        record = {"service": service, "action": f"household.update.{i}", "actor_sub": "u1"}
        linked = link(record, chain_id=chain_id, sequence=i, previous_hash=previous)
        previous = linked["hash"]
        records.append(linked)
    return records


def test_an_intact_chain_verifies_even_with_redelivered_copies() -> None:
    records = chain(5)
    assert verify_chain(records + records[1:3]) == []


def test_hash_covers_every_field_but_itself() -> None:
    record = chain(1)[0]
    assert chain_hash(GENESIS_HASH, record) == record["hash"]
    assert chain_hash(GENESIS_HASH, {**record, "actor_sub": "u2"}) != record["hash"]


def test_an_altered_record_is_detected_at_its_sequence() -> None:
    records = chain(5)
    records[2] = {**records[2], "actor_sub": "someone-else"}
    [found] = verify_chain(records)
    assert (found.sequence, found.problem) == (3, "record altered (hash mismatch)")


def test_a_missing_record_is_detected() -> None:
    records = chain(5)
    del records[1]
    [found] = verify_chain(records)
    assert (found.sequence, found.problem) == (2, "missing record")


def test_a_rewritten_chain_tail_is_detected_by_its_link() -> None:
    records = chain(4)
    forged = link(
        {**records[2], "actor_sub": "x"}, chain_id="c1", sequence=3, previous_hash="f" * 64
    )
    [found] = verify_chain([*records[:2], forged, records[3]])
    assert found.problem == "previous_hash does not match"


def test_two_versions_of_one_sequence_are_detected() -> None:
    records = chain(3)
    impostor = {**records[1], "action": "household.erase"}
    breaks = verify_chain([*records, impostor])
    assert any(b.problem == "two different records with one sequence" for b in breaks)


def test_chains_of_different_databases_are_checked_apart() -> None:
    assert verify_chain(chain(3, chain_id="a") + chain(2, chain_id="b")) == []
    broken = chain(2, chain_id="b")
    broken[1]["action"] = "tampered"
    [found] = verify_chain(chain(3, chain_id="a") + broken)
    assert found.chain_id == "b"
