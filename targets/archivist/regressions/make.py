"""Build Archivist's regressions: the reference package with ONE bug of the seeds put back each.

    python targets/archivist/regressions/make.py           # (re)write every regression folder
    python targets/archivist/regressions/make.py --check   # exit 1 if any is out of date

Each regression folder `<name>/` gets a full copy of `../core` with the bug's edits applied (an
edit is an exact text that must occur once in the reference, and its replacement: a reference
that changed under an edit stops the build instead of silently dropping the bug), and a
`signoff.toml`: the reference claims, verbatim, under a header naming the bug. `expected.toml`
lists, for every regression, the claims that must fail; every other claim in its file must hold.
The generated folders are committed, so a run needs no build step; `--check` keeps them honest.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent
REFERENCE_CORE = TARGET / "core"
REFERENCE_CLAIMS = TARGET / "signoff.toml"

IMPORT_CLAIMS = [
    "import:core",
    "import:core.admin_ui",
    "import:core.config",
    "import:core.database",
    "import:core.exceptions",
    "import:core.health_check",
    "import:core.lazy_imports",
    "import:core.models",
    "import:core.redis_client",
    "import:core.services",
    "import:core.tasks",
]


@dataclass(frozen=True)
class Edit:
    path: str  # relative to core/
    old: str
    new: str


@dataclass(frozen=True)
class Bug:
    name: str
    seed: str  # the sentence of the seeds that describes the "before"
    summary: str
    fails: list[str]  # claim ids that must fail; the rest of the file must hold
    edits: list[Edit]
    sections: tuple[str, ...] | None = None  # claims-file sections kept (None: all)


BUGS: list[Bug] = [
    Bug(
        name="circular_import",
        seed="seed 000: `admin_ui.py` was importing from `core` while `core` was importing "
        "`admin_ui`, causing circular dependencies",
        summary="core/__init__.py imports core.admin_ui at its top; admin_ui imports "
        "MEMBER_CITIES and the getters from `core`, which defines them further down. Every "
        "module of the package runs core/__init__.py first, so every import fails with the "
        "cycle core -> core.admin_ui -> core, and no call can be checked: the file keeps only "
        "[imports].",
        fails=IMPORT_CLAIMS,
        sections=("target", "imports"),
        edits=[
            Edit(
                "__init__.py",
                '__version__ = "1.0"\n',
                '__version__ = "1.0"\n\n'
                "# the admin UI, exported with the package\n"
                "from core.admin_ui import get_app as get_admin_app  # noqa: E402, F401\n",
            ),
            Edit(
                "admin_ui.py",
                "from core.config import MEMBER_CITIES\n"
                "from core.exceptions import FileError, ServiceUnavailableError, ValidationError\n"
                "from core.lazy_imports import get_health_report, get_transcription_service\n",
                "from core import MEMBER_CITIES, get_health_report, get_transcription_service\n"
                "from core.exceptions import FileError, ServiceUnavailableError, ValidationError\n",
            ),
        ],
    ),
    Bug(
        name="eager_celery",
        seed="seed 002: Celery App Initialization - Connects to Redis immediately during import; "
        "seed 000: `core.tasks`: 5.000s (hanging on Redis connection)",
        summary="core/tasks.py makes the Celery app at import and checks the broker there with "
        "kombu's ensure_connection(), which retries forever: importing core.tasks connects to "
        "Redis, and hangs while Redis hangs. (The broker check's own claim runs a warmup "
        "without the fault, in which this import connects and returns: the check itself still "
        "gives up in 5 s, so only the import claim fails.)",
        fails=["import:core.tasks"],
        edits=[
            Edit(
                "tasks.py",
                "        raise _broker_error(exc) from exc\n    return True\n",
                "        raise _broker_error(exc) from exc\n    return True\n\n\n"
                "# Fail at start-up, not at the first request, when the broker is unreachable.\n"
                "get_celery_app().connection_for_write().ensure_connection()\n",
            )
        ],
    ),
    Bug(
        name="redis_no_timeout",
        seed="seed 002: No Timeout Protection - External connections can hang indefinitely",
        summary="core/redis_client.py makes the shared Redis client with socket_timeout=None and "
        "socket_connect_timeout=None: a ping waits forever on a hung Redis and for the kernel "
        "(minutes) on a blackholed one, and the mock fallback never comes while Redis hangs. "
        "The health report still answers (it abandons a check after its timeout + 1 s).",
        fails=[
            "timeout:redis ping gives up after 5 s on a hung server",
            "timeout:redis connect gives up after 5 s when never answered",
            "degradation:transcription degrades to a mock when redis hangs, and recovers",
        ],
        edits=[
            Edit(
                "redis_client.py",
                "                socket_timeout=config.REDIS_TIMEOUT_S,\n"
                "                socket_connect_timeout=config.REDIS_TIMEOUT_S,\n",
                "                socket_timeout=None,\n"
                "                socket_connect_timeout=None,\n",
            )
        ],
    ),
    Bug(
        name="no_fallback",
        seed="seed 000: Service failures could cause complete system failure",
        summary="get_transcription_service() returns TranscriptionService() with no fallback: "
        "with Redis down it raises ServiceUnavailableError instead of returning the mock.",
        fails=[
            "degradation:transcription degrades to a mock when redis dies, and recovers",
            "degradation:transcription degrades to a mock when redis hangs, and recovers",
        ],
        edits=[
            Edit(
                "services/__init__.py",
                "    try:\n"
                "        service = TranscriptionService()\n"
                "    except ServiceUnavailableError as exc:\n"
                '        logger.warning("TranscriptionService unavailable, using the mock: %s", '
                "exc)\n"
                "        return MockTranscriptionService(str(exc))\n",
                "    service = TranscriptionService()\n",
            )
        ],
    ),
    Bug(
        name="cached_mock",
        seed="seed 002: `_transcription_service = MockTranscriptionService()` in a lazy "
        "singleton (get_transcription_service)",
        summary="the seeds' own singleton: the first failure stores the mock in the "
        "module-level _transcription_service, and every later call returns it, so the archive "
        "never recovers when Redis comes back.",
        fails=[
            "degradation:transcription degrades to a mock when redis dies, and recovers",
            "degradation:transcription degrades to a mock when redis hangs, and recovers",
        ],
        edits=[
            Edit(
                "services/__init__.py",
                "_transcription_service: TranscriptionService | None = None\n",
                "_transcription_service: TranscriptionService | MockTranscriptionService | None = "
                "None\n",
            ),
            Edit(
                "services/__init__.py",
                "    try:\n"
                "        service = TranscriptionService()\n"
                "    except ServiceUnavailableError as exc:\n"
                '        logger.warning("TranscriptionService unavailable, using the mock: %s", '
                "exc)\n"
                "        return MockTranscriptionService(str(exc))\n"
                "    with _lock:\n",
                "    try:\n"
                "        service = TranscriptionService()\n"
                "    except ServiceUnavailableError as exc:\n"
                '        logger.warning("TranscriptionService unavailable, using the mock: %s", '
                "exc)\n"
                "        service = MockTranscriptionService(str(exc))\n"
                "    with _lock:\n",
            ),
            Edit(
                "services/__init__.py",
                "def _forget(service: TranscriptionService) -> None:",
                "def _forget(service: TranscriptionService | MockTranscriptionService) -> None:",
            ),
        ],
    ),
    Bug(
        name="health_lies",
        seed="seed 000: Graceful Degradation - System continues operating with partial failures "
        "(read as: Redis is optional, so health ignores it)",
        summary="overall() counts only the database: with Redis down /health still answers "
        '200 {"status": "healthy"}.',
        fails=["http:health says degraded when redis is down"],
        edits=[
            Edit(
                "health_check.py",
                '    healthy = all(s["status"] == "up" for s in services.values())\n',
                "    # Redis only feeds the transcription queue, which degrades to a mock\n"
                '    healthy = services["database"]["status"] == "up"\n',
            )
        ],
    ),
    Bug(
        name="slow_import",
        seed="seed 000: Heavy modules were imported immediately, causing hanging during startup",
        summary="core/admin_ui.py builds its Flask app at import (`app = get_app()`), so "
        "importing it imports Flask and Werkzeug: 130-200 ms against a 50 ms budget.",
        fails=["import:core.admin_ui"],
        edits=[
            Edit(
                "admin_ui.py",
                "def __getattr__(name: str) -> Any:\n"
                '    if name == "app":\n'
                "        return get_app()\n"
                "    raise AttributeError(f\"module 'core.admin_ui' has no attribute {name!r}\")\n",
                "app = get_app()\n",
            )
        ],
    ),
    Bug(
        name="double_model",
        seed="seed 000: SAWarning: This declarative base already contains a class with the same "
        "class name",
        summary="core/models.py declares MediaItem a second time (a leftover of the old admin "
        "pages); with extend_existing SQLAlchemy warns at import instead of failing.",
        fails=["import:core.models"],
        edits=[
            Edit(
                "models.py",
                '        return f"<Transcript {self.id} of media {self.media_item_id} '
                '{self.status.value}>"\n',
                '        return f"<Transcript {self.id} of media {self.media_item_id} '
                '{self.status.value}>"\n'
                "\n\n"
                "# The old admin pages import MediaItem from here with the columns they show.\n"
                "class MediaItem(Base):  # type: ignore[no-redef]\n"
                '    __tablename__ = "media_items"\n'
                '    __table_args__ = {"extend_existing": True}  # noqa: RUF012\n'
                "\n"
                "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
                "    path: Mapped[str] = mapped_column(String(1024), unique=True)\n"
                "    title: Mapped[str] = mapped_column(String(255))\n",
            )
        ],
    ),
]


def _claims_text(bug: Bug) -> str:
    """The reference claims under a header naming the bug; only `bug.sections` if given."""
    text = REFERENCE_CLAIMS.read_text()
    lines = text.splitlines(keepends=True)
    # drop the reference's own header comment (up to the first table)
    start = next(i for i, line in enumerate(lines) if line.startswith("["))
    body = lines[start:]
    if bug.sections is not None:
        kept: list[str] = []
        keep = True
        for line in body:
            if line.startswith("["):
                section = line.strip("[] \n").split(".")[0]
                keep = section in bug.sections
            if keep:
                kept.append(line)
        body = kept
        while body and (not body[-1].strip() or body[-1].startswith("#")):
            body.pop()  # a dropped section's leading comments
        body[-1:] = [body[-1].rstrip("\n") + "\n"]
    out = "".join(body).replace('name = "archivist"', f'name = "archivist-{bug.name}"', 1)
    header = [
        f"# Regression {bug.name}: Archivist with one seed bug put back. GENERATED by make.py from",
        "# ../../signoff.toml (the reference claims, verbatim); edit make.py, not this file.",
        f"# The bug: {bug.summary}",
        f"# Seed: {bug.seed}",
        "# Must fail: " + ", ".join(bug.fails),
        "# Everything else here must hold.",
    ]
    wrapped = []
    for line in header:
        while len(line) > 100:
            cut = line.rfind(" ", 0, 100)
            wrapped.append(line[:cut])
            line = "#  " + line[cut:]
        wrapped.append(line)
    return "\n".join(wrapped) + "\n\n" + out


def _expected_text() -> str:
    out = [
        "# GENERATED by make.py: for each regression folder, the claims of its signoff.toml that",
        "# must fail; every other claim in that file must hold.",
        "",
    ]
    for bug in BUGS:
        out.append(f"[{bug.name}]")
        out.append(f"bug = {json.dumps(bug.summary)}")
        out.append("fails = [")
        out.extend(f"    {json.dumps(claim)}," for claim in bug.fails)
        out.append("]")
        out.append("")
    return "\n".join(out)


def _copy_core(dest: Path) -> None:
    shutil.copytree(REFERENCE_CORE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build(bug: Bug, into: Path) -> None:
    """Write regression `bug` into folder `into` (created; must not exist)."""
    core = into / "core"
    _copy_core(core)
    for edit in bug.edits:
        path = core / edit.path
        text = path.read_text()
        count = text.count(edit.old)
        if count != 1:
            raise SystemExit(
                f"make.py: {bug.name}: the text to replace occurs {count} times in "
                f"core/{edit.path} (expected once): the reference changed; update the edit"
            )
        path.write_text(text.replace(edit.old, edit.new))
    (into / "signoff.toml").write_text(_claims_text(bug))


def _same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two trees (ignoring __pycache__)."""
    diffs: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        for name in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files:
            if name != "__pycache__":
                diffs.append(prefix + name)
        for name, sub in cmp.subdirs.items():
            if name != "__pycache__":
                walk(sub, prefix + name + "/")

    walk(filecmp.dircmp(a, b, ignore=["__pycache__"]), "")
    return diffs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for bug in BUGS:
            fresh = Path(tmp) / bug.name
            fresh.mkdir()
            build(bug, fresh)
            target = HERE / bug.name
            if args.check:
                if not target.is_dir():
                    stale.append(f"{bug.name}/ (missing)")
                else:
                    stale.extend(f"{bug.name}/{p}" for p in _same_tree(fresh, target))
            else:
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(fresh, target)
        expected = HERE / "expected.toml"
        if args.check:
            if not expected.is_file() or expected.read_text() != _expected_text():
                stale.append("expected.toml")
        else:
            expected.write_text(_expected_text())
    if stale:
        print("make.py: out of date (run make.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"make.py: wrote {len(BUGS)} regressions and expected.toml under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
