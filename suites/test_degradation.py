"""[[degradation]]: a service down, the application keeps working, and recovers."""

import pytest

from signoff import kinds
from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.stages import verify


@pytest.mark.signoff_kinds(*kinds.in_suite("degradation"))
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
