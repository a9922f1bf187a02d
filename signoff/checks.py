"""Which probe checks which kind of claim. Kinds whose probe is not built yet are reported as
`error`, never silently skipped."""

from __future__ import annotations

from signoff.claims import ClaimRef, ClaimsFile
from signoff.claims.model import DegradationClaim, HttpClaim, Imports, TimeoutClaim
from signoff.context import RunContext
from signoff.probes.degradation import check_degradation
from signoff.probes.discover import discover_modules
from signoff.probes.http import check_http
from signoff.probes.imports import check_import
from signoff.probes.timeouts import check_timeout
from signoff.verdict import Verdict

CHECKED_KINDS = ("import", "timeout", "degradation", "http", "cron", "webhook", "load")
ALL_KINDS = ("import", "timeout", "degradation", "http", "cron", "webhook", "load", "websocket")
_SECTION_NAMES = {"imports": "import", "timeouts": "timeout", "webhooks": "webhook"}


def kind_from_word(word: str) -> str:
    """`--only` accepts a claim kind ("import") or its section's name ("imports")."""
    kind = _SECTION_NAMES.get(word, word)
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown claim kind {word!r}; expected one of {', '.join(ALL_KINDS)}")
    return kind


def expand_claims(claims: ClaimsFile) -> list[ClaimRef]:
    """Every claim of the file, plus one import claim per module found under [imports].discover
    (with the default budget) that the budgets do not list already."""
    refs = list(claims.claims())
    imports = claims.imports
    if imports is None or not imports.discover:
        return refs
    known = {ref.id for ref in refs}
    roots = [str(p) for p in claims.target.pythonpath]
    last_import = max((i for i, r in enumerate(refs) if r.kind == "import"), default=-1)
    extra: list[ClaimRef] = []
    for package in imports.discover:
        try:
            modules = discover_modules(package, roots)
        except LookupError:
            modules = [package]  # the import claim itself will say it cannot be imported
        for module in modules:
            claim_id = f"import:{module}"
            if claim_id not in known:
                known.add(claim_id)
                extra.append(
                    ClaimRef(
                        id=claim_id,
                        kind="import",
                        spec=imports,
                        section_key=f"imports.discover ({package})",
                    )
                )
    return refs[: last_import + 1] + extra + refs[last_import + 1 :]


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    if ref.kind == "import":
        spec = ref.spec if isinstance(ref.spec, Imports) else ctx.claims.imports
        assert spec is not None
        module = ref.id.split(":", 1)[1]
        budget = spec.budgets.get(module, spec.default_budget)
        if budget is None:
            return Verdict(ref.id, ref.kind, "error", evidence=f"no budget for {module}")
        return check_import(ctx, ref.id, module, budget, spec)
    if ref.kind == "timeout":
        assert isinstance(ref.spec, TimeoutClaim)
        return check_timeout(ctx, ref.id, ref.spec)
    if ref.kind == "degradation":
        assert isinstance(ref.spec, DegradationClaim)
        return check_degradation(ctx, ref.id, ref.spec)
    if ref.kind == "http":
        assert isinstance(ref.spec, HttpClaim)
        return check_http(ctx, ref.id, ref.spec)
    if ref.kind == "cron":
        from signoff.claims.model import Cron
        from signoff.probes.cron import check_cron  # hypothesis loads only when cron is checked

        assert isinstance(ref.spec, Cron)
        return check_cron(ctx, ref.id, ref.spec)
    if ref.kind == "webhook":
        from signoff.claims.model import Webhooks
        from signoff.probes.webhooks import check_webhook  # hypothesis loads only when needed

        assert isinstance(ref.spec, Webhooks)
        return check_webhook(ctx, ref.id, ref.spec)
    if ref.kind == "load":
        from signoff.claims.model import LoadClaim
        from signoff.probes.load import check_load

        assert isinstance(ref.spec, LoadClaim)
        return check_load(ctx, ref.id, ref.spec)
    return Verdict(
        ref.id, ref.kind, "error", evidence=f"not checked: no {ref.kind} probe in this version"
    )
