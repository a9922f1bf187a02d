"""The reports app with one regression: verify ignores the timestamp's age."""
