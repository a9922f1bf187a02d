"""[[timeouts]]: a client against a server that stops answering."""

import pytest

from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.session import verify


@pytest.mark.signoff_kinds("timeout")
def test_claim(claim: ClaimRef, signoff_run: RunContext) -> None:
    verify(signoff_run, claim)
