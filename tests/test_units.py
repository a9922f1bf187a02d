import pytest

from signoff.faults import Fault, parse_fault
from signoff.units import format_duration, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250us", 250e-6),
        ("50ms", 0.05),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("365d", 365 * 86400.0),
        (3, 3.0),
        (0.5, 0.5),
        ("1.5s", 1.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["fast", "5", "5 parsecs", "", "-1s", True, None, [1]])
def test_bad_durations_name_the_expectation(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512_000_000),
        ("64KiB", 65536),
        (1024, 1024),
        ("1GiB", 1024**3),
        ("10B", 10),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_rate_and_formatting() -> None:
    assert parse_rate("64B/s") == 64.0
    with pytest.raises(ValueError):
        parse_rate("64B")
    assert format_duration(0.043) == "43 ms"
    assert format_duration(5.003) == "5.003 s"
    assert format_duration(250e-6) == "250 us"


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("hang", Fault("hang")),
        ("kill", Fault("kill")),
        ("latency:2s", Fault("latency", 2.0)),
        ("slow:64B/s", Fault("slow", 64.0)),
        ("blackhole", Fault("blackhole")),
    ],
)
def test_faults(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault


@pytest.mark.parametrize("bad", ["hung", "latency", "latency:soon", "slow:64B", "hang:2s", ""])
def test_bad_faults(bad: str) -> None:
    with pytest.raises(ValueError, match=r"fault|latency|slow|rate|duration"):
        parse_fault(bad)
