"""[cron]: bounded schedule expansion (sub-claims cron:time, cron:count, cron:correct,
cron:invalid)."""

import pytest

from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.session import verify


@pytest.mark.signoff_kinds("cron")
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
