"""``haven audit verify`` reads with the cluster's security settings and the services' keys."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr

from haven.audit import KeysFile, reader_options
from shared.audit_chain import development_key
from shared.settings import CommonSettings, ServiceSettings


def test_the_reader_uses_the_clusters_sasl_and_tls_settings_without_a_group() -> None:
    settings = CommonSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="audit-reader",
        kafka_sasl_password=SecretStr("read-only"),
    )
    options = reader_options(settings)
    assert options["group_id"] is None  # no group: a read-only user needs no group ACL
    assert options["enable_auto_commit"] is False
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "audit-reader"
    assert options["ssl_context"] is not None


def test_keys_come_from_a_file_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"registration": "r-secret"}))
    keys = KeysFile(json.loads(path.read_text()))
    assert keys.get("registration") == b"r-secret"
    assert keys.get("referral") is None
    own = ServiceSettings(audit_chain_key=SecretStr("r-secret"))
    assert own.chain_key("registration") == b"r-secret"
    assert ServiceSettings().chain_key("referral") == development_key("referral")


def test_keys_come_from_a_mounted_secret_directory(tmp_path: Path) -> None:
    """The haven-audit-chain-keys Secret mounted as a volume: a file per service."""
    (tmp_path / "registration").write_text("r-secret\n")
    (tmp_path / "referral").write_text("f-secret")
    (tmp_path / "..data").mkdir()  # Kubernetes' own link directory is not a key
    keys = KeysFile.read(tmp_path)
    assert keys.get("registration") == b"r-secret"
    assert keys.get("referral") == b"f-secret"
    assert keys.get("..data") is None
