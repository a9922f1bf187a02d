"""Kinds whose probes later versions add: each claim is reported as `error`, not skipped."""

import pytest

from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.session import verify


@pytest.mark.signoff_kinds("websocket")
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
