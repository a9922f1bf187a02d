"""Half of an import cycle."""

from probe_target.circular_b import helper_b


def helper_a() -> str:
    return helper_b()
