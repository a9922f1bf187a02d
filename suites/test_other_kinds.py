"""Kinds without a suite of their own: those of other packages (signoff.kinds), and kinds whose
probes later versions add: each claim is reported as `error`, not skipped."""

import pytest

from signoff import kinds
from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.stages import verify


@pytest.mark.signoff_kinds(*kinds.in_suite("other"))
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
