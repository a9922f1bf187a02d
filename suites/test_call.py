"""[[call]]: a callable returns (or raises) what was promised, in time, with or without faults."""

import pytest

from signoff import kinds
from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.stages import verify


@pytest.mark.signoff_kinds(*kinds.in_suite("call"))
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
