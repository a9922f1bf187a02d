"""A statistical timing test of a signature comparison, in the style of dudect (Reparaz, Balasch,
Verbauwhede, "Dude, is my code constant time?", 2017).

Two classes of wrong signatures go to verify, interleaved at random: one that matches the valid
signature in every character but the last (class 1), and one that differs from its first
character (class 0). A comparison that stops at the first difference takes longer on class 1.
Welch's t-test between the two classes' times, after cropping the slow tail (interrupts,
scheduling), says whether the difference is real: t beyond THRESHOLD fails the claim. The test
is one-sided: the t of each crop is computed and the largest counts, in the direction an early
exit leaks. A class 0 that is slower is no early exit: CI runs measured such systematic shifts
(t = -34 on 133 ns, against compare_digest), from how the two probes' strings sit and hash,
not from the comparison; they are reported, never a failure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLD = 10.0  # dudect's "definitely not constant time" is 10; 4.5 is its "probably"
CROPS = (0.5, 0.75, 0.9, 0.99, 1.0)  # keep the fastest fraction of all measurements


@dataclass(frozen=True)
class TimingResult:
    t: float  # the largest t over the crops (positive: class 1, the nearly right one, is slower)
    crop: float  # the crop that gave it
    count: tuple[int, int]  # measurements of class 0 and class 1 (before cropping)
    median_ns: tuple[float, float]

    @property
    def leaks(self) -> bool:
        return self.t > THRESHOLD


def welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's t statistic of mean(b) - mean(a); 0 when either side has fewer than 2 values or
    neither varies."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(var_a / len(a) + var_b / len(b))
    if se == 0:
        return 0.0 if mean_a == mean_b else math.copysign(math.inf, mean_b - mean_a)
    return (mean_b - mean_a) / se


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def dudect(times: Sequence[int], classes: str) -> TimingResult:
    """`times[i]` was measured on class `classes[i]` ("0" or "1")."""
    pairs = list(zip(times, classes, strict=False))
    ordered = sorted(t for t, _ in pairs)
    best_t, best_crop = 0.0, 1.0
    for crop in CROPS:
        if not ordered:
            break
        limit = ordered[min(len(ordered) - 1, max(0, math.ceil(crop * len(ordered)) - 1))]
        a = [t for t, c in pairs if c == "0" and t <= limit]
        b = [t for t, c in pairs if c == "1" and t <= limit]
        t = welch_t(a, b)
        if crop == CROPS[0] or t > best_t:
            best_t, best_crop = t, crop
    zero = [t for t, c in pairs if c == "0"]
    one = [t for t, c in pairs if c == "1"]
    return TimingResult(best_t, best_crop, (len(zero), len(one)), (_median(zero), _median(one)))
