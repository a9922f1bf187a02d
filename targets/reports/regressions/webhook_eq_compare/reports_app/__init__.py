"""The reports app with one regression: verify compares signatures with ==."""
