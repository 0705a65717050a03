"""The rules of registration, as plain functions over a session (no HTTP, no Kafka)."""
