"""The other half of an import cycle."""

from probe_target.circular_a import helper_a


def helper_b() -> str:
    return helper_a()
