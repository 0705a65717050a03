"""The audit hash chain: linking, and detecting gaps, reorderings and alterations."""

from typing import Any

from shared.audit_chain import GENESIS_HASH, chain_hash, development_key, link, verify_chain

KEY = development_key("registration")


def chain(n: int, *, chain_id: str = "c1", service: str = "registration") -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    previous = GENESIS_HASH
    for i in range(1, n + 1):
        record = {"service": service, "action": f"household.update.{i}", "actor_sub": "u1"}
        linked = link(
            record,
            chain_id=chain_id,
            sequence=i,
            previous_hash=previous,
            key=development_key(service),
        )
        previous = linked["hash"]
        records.append(linked)
    return records


def test_an_intact_chain_verifies_even_with_redelivered_copies() -> None:
    records = chain(5)
    assert verify_chain(records + records[1:3]) == []


def test_hash_covers_every_field_but_itself() -> None:
    record = chain(1)[0]
    assert chain_hash(GENESIS_HASH, record, KEY) == record["hash"]
    assert chain_hash(GENESIS_HASH, {**record, "actor_sub": "u2"}, KEY) != record["hash"]


def test_an_altered_record_is_detected_at_its_sequence() -> None:
    records = chain(5)
    records[2] = {**records[2], "actor_sub": "someone-else"}
    [found] = verify_chain(records)
    assert (found.sequence, found.problem) == (3, "record altered or forged (hash mismatch)")


def test_a_missing_record_is_detected() -> None:
    records = chain(5)
    del records[1]
    [found] = verify_chain(records)
    assert (found.sequence, found.problem) == (2, "missing record")


def test_a_rewritten_chain_tail_is_detected_by_its_link() -> None:
    records = chain(4)
    forged = link(
        {**records[2], "actor_sub": "x"},
        chain_id="c1",
        sequence=3,
        previous_hash="f" * 64,
        key=KEY,
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


class Keys:
    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    def get(self, service: str, /) -> bytes | None:
        return self.keys.get(service)


def test_a_service_without_another_services_key_cannot_forge_its_chain() -> None:
    """The distribution service (or anyone who can write the topic) appends a record to
    registration's chain, linked correctly but keyed with its own key: detected."""
    keys = Keys({"registration": b"registration-secret", "distribution": b"distribution-secret"})
    records, previous = [], GENESIS_HASH
    for i in (1, 2):
        record = {"service": "registration", "action": f"a{i}"}
        records.append(
            link(
                record, chain_id="c", sequence=i, previous_hash=previous, key=b"registration-secret"
            )
        )
        previous = records[-1]["hash"]
    assert verify_chain(records, keys) == []
    forged = link(
        {"service": "registration", "action": "household.erase"},
        chain_id="c",
        sequence=3,
        previous_hash=previous,
        key=b"distribution-secret",
    )
    [found] = verify_chain([*records, forged], keys)
    assert (found.service, found.sequence) == ("registration", 3)
    assert found.problem == "record altered or forged (hash mismatch)"


def test_a_chain_whose_key_the_verifier_lacks_is_reported() -> None:
    [found] = verify_chain(chain(2), Keys({}))
    assert found.problem == "no key for this service's chain"
