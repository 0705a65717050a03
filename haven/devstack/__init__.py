"""Local development and test infrastructure: Kafka, PostgreSQL and Prometheus without Docker."""
