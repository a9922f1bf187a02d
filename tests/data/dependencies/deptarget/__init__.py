"""The target of tests/test_dependencies.py: a client of the stub dependency at $STUB_URL."""
