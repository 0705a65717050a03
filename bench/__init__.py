"""Haven's benchmark harness: ``python -m bench [--quick] [--scenarios a,b]``.

It starts the whole stack on free loopback ports (state under ``.haven/bench/``), generates
synthetic households, runs the scenarios of issue 9 with a load generator in its own process,
samples each service's memory, measures the raw limits of Kafka and PostgreSQL on the same
machine, and writes ``bench/results/<UTC time>.{json,md}`` plus PNG plots.
See docs/performance.md.
"""
