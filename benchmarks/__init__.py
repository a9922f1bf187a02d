"""The harness's own benchmarks (`tox -e bench`, pytest-benchmark) and studies (flake_study.py,
load_bench.py). Not collected by the tests: pyproject.toml's testpaths is tests/ only."""
