"""[[degradation]]: a service down, the application keeps working, and recovers."""

import pytest

from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.session import verify


@pytest.mark.signoff_kinds("degradation")
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
