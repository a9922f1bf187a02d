"""Finding every submodule of a package from the file system, without importing anything."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def discover_modules(package: str, roots: Sequence[str]) -> list[str]:
    """`package` and every module below it, in sorted order. Raises LookupError if no root has
    the package."""
    rel = Path(*package.split("."))
    for root in roots:
        base = Path(root) / rel
        if (base / "__init__.py").is_file():
            found = {package}
            for path in base.rglob("*.py"):
                parts = path.relative_to(base).with_suffix("").parts
                if any(not p.isidentifier() for p in parts) or not _in_packages(base, path):
                    continue
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found.add(".".join((package, *parts)) if parts else package)
            return sorted(found)
        if base.with_suffix(".py").is_file():
            return [package]
    raise LookupError(f"no package {package!r} under {', '.join(roots)}")


def _in_packages(base: Path, path: Path) -> bool:
    """Every folder between `base` and the file is a regular package."""
    folder = path.parent
    while folder != base:
        if not (folder / "__init__.py").is_file():
            return False
        folder = folder.parent
    return True
