"""The reports app with one regression: verify accepts a delivery without a v1 signature."""
