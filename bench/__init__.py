"""Benchmarks for ``make bench``: ``python -m bench.run [--quick] [--part a|b]``.

Part A times ``check`` (the library path: ``Pipeline`` + ``check``) on 1M and 5M rows of the
canonical schema, CSV and Parquet, against a naive pandas ``iterrows`` baseline, and measures
peak memory. Part B sends against the simulator (in a child process) on loopback: pacing at a
fixed rate limit, throughput at a fixed latency against a sequential ``httpx`` loop, and the
simulator's own request rate.

Every measurement runs in a fresh child process (``bench.worker``), so its peak RSS and CPU time
are its own; figures are medians of repeated runs. Inputs are generated into ``bench/data/``
(gitignored) and reused while their size and scheme match; figures go to
``bench/last-results.json``.
"""
