"""A fake target for the probe runner's tests: each module misbehaves in one way."""
