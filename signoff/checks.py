"""The claims a run checks (the file's, plus the modules [imports].discover finds), and the
check of one claim, through the kinds' registry (signoff.kinds)."""

from __future__ import annotations

from signoff import kinds
from signoff.claims import ClaimRef, ClaimsFile
from signoff.context import RunContext
from signoff.kinds.imports.discover import discover_modules
from signoff.verdict import Verdict


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
    return kinds.check(ctx, ref)
