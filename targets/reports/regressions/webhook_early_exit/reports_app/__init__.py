"""The reports app with one regression: verify compares signatures with a hand-written loop that
stops at the first difference."""
