"""[[websocket]]: heartbeats, idle clients closed, answering clients kept, with real clients."""

import pytest

from signoff import kinds
from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.stages import verify


@pytest.mark.signoff_kinds(*kinds.in_suite("websocket"))
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
