"""The claims file: signoff's contract with its users (shared/CLAIMS.md), as typed data.

claims = load_claims("signoff.toml")      # raises ClaimsError with every problem found
for ref in claims.claims():               # ClaimRef(id, kind, spec, section_key)
    ...
"""

from signoff.claims.load import load_claims
from signoff.claims.model import (
    CLAIM_KINDS,
    SECTION_KINDS,
    CallClaim,
    ClaimRef,
    ClaimsFile,
    Cron,
    DegradationClaim,
    Dependency,
    Flow,
    HttpClaim,
    HttpFault,
    Imports,
    LoadClaim,
    Memory,
    Percentiles,
    Server,
    SqlClaim,
    Target,
    TimeoutClaim,
    Webhooks,
    WebsocketClaim,
)
from signoff.claims.types import SERVICES, is_secret_key, redact

__all__ = [
    "CLAIM_KINDS",
    "SECTION_KINDS",
    "SERVICES",
    "CallClaim",
    "ClaimRef",
    "ClaimsFile",
    "Cron",
    "DegradationClaim",
    "Dependency",
    "Flow",
    "HttpClaim",
    "HttpFault",
    "Imports",
    "LoadClaim",
    "Memory",
    "Percentiles",
    "Server",
    "SqlClaim",
    "Target",
    "TimeoutClaim",
    "Webhooks",
    "WebsocketClaim",
    "is_secret_key",
    "load_claims",
    "redact",
]
