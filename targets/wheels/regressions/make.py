"""Build Wheels & Wins' regressions: the reference target with ONE "before" bug of seed 004 each.

    python targets/wheels/regressions/make.py           # (re)write every regression folder
    python targets/wheels/regressions/make.py --check   # exit 1 if any is out of date

Each regression folder `<name>/` gets a full copy of the reference's `app/`, `stubs/`, `sql/`
and `loadtests/` with the bug's edits applied (an edit is an exact text that must occur once in
the reference, and its replacement: a reference that changed under an edit stops the build
instead of silently dropping the bug), and a `signoff.toml`: the reference claims, verbatim,
under a header naming the bug. `expected.toml` lists, for every regression, the claims that
must fail; every other claim in its file must hold. The generated folders are committed, so a
run needs no build step; `--check` keeps them honest. (The mechanism of
targets/archivist/regressions/make.py.)
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
TREES = ("app", "stubs", "sql", "loadtests")  # what a regression carries of the reference
REFERENCE_CLAIMS = TARGET / "signoff.toml"


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the target's folder
    old: str
    new: str


@dataclass(frozen=True)
class Bug:
    name: str
    seed: str  # the sentence of the seed that describes the "before"
    summary: str
    fails: list[str]  # claim ids that must fail; the rest of the file must hold
    edits: list[Edit]


PREFLIGHTS = [
    "http:a preflight from the app's origin answers 200 with the allow headers",
    "http:a preflight from the dev origin answers 200 on another API path",
]

TEXT_ONLY = "degradation:tts falls back to text-only when Edge and Coqui hang and espeak-ng is off"
MEMORY = "load:memory stays under 85% of the limit under report load, and settles under 65%"

BUGS: list[Bug] = [
    Bug(
        name="preflight_400",
        seed="seed 004: OPTIONS requests returning 400 status codes",
        summary="app/core/cors_config.py allows only the CORS-safelisted request headers: the "
        "frontend's preflight asks for Authorization (its Supabase JWT), and Starlette answers "
        "400 'Disallowed CORS headers', with no allow-origin.",
        fails=PREFLIGHTS,
        edits=[
            Edit(
                "app/core/cors_config.py",
                "ALLOWED_HEADERS = [\n"
                '    "Authorization",\n'
                '    "Content-Type",\n'
                '    "Accept",\n'
                '    "Origin",\n'
                '    "X-Requested-With",\n'
                '    "X-Request-ID",\n'
                "]\n",
                'ALLOWED_HEADERS = ["Content-Type", "Accept"]\n',
            )
        ],
    ),
    Bug(
        name="wildcard_origin",
        seed="seed 004: CORS Configuration Issues (the quick fix for the 400s: any origin)",
        summary='app/core/cors_config.py allows every origin (`allow_origins=["*"]`) with '
        "credentials: Starlette then echoes whatever Origin comes (a literal * cannot go with "
        "credentials), so a request or a preflight from any site gets "
        "access-control-allow-origin with its own origin, and allow-credentials: true. The "
        "app's own origins get what they got before.",
        fails=[
            "http:a request from another origin gets no access-control-allow-origin",
            "http:a preflight from another origin is refused without allow headers",
        ],
        edits=[
            Edit(
                "app/core/cors_config.py",
                '        "allow_origins": origins,\n',
                '        "allow_origins": ["*"],  # every frontend, preview deploys included\n',
            )
        ],
    ),
    Bug(
        name="no_heartbeat",
        seed="seed 004: 120-second timeouts, heartbeat monitoring failures",
        summary="app/core/websocket_manager.py never starts the heartbeat task and closes idle "
        "clients after a hard-coded 120 s: no heartbeat ever arrives, and a silent client is "
        "still open long after the 6 s claimed. A client that answers stays connected (there "
        "is nothing to answer, and 120 s is longer than the claim).",
        fails=[
            "websocket:a heartbeat every 2 s, silent clients closed after 6 s, answering ones kept"
        ],
        edits=[
            Edit(
                "app/core/websocket_manager.py",
                "        idle_timeout = config.websocket_idle_timeout()\n",
                "        idle_timeout = 120.0\n",
            ),
            Edit(
                "app/core/websocket_manager.py",
                "        tasks = [\n"
                "            asyncio.create_task(self._heartbeat(conn, interval)),\n"
                "            asyncio.create_task(self._watch_idle(conn, idle_timeout)),\n"
                "        ]\n",
                "        tasks = [asyncio.create_task(self._watch_idle(conn, idle_timeout))]\n",
            ),
        ],
    ),
    Bug(
        name="skip_coqui",
        seed="seed 004: Edge TTS initialization failing, no working fallbacks",
        summary="get_engine() reads a refused Edge as 'the network engines are not deployed "
        "here' and skips Coqui, going straight to espeak-ng: with Edge refused it returns "
        "SystemTTS though Coqui answers. (With Edge hung it still tries Coqui.)",
        fails=["degradation:tts falls back to Coqui when Edge is refused, and back to Edge"],
        edits=[
            Edit(
                "app/services/tts/tts_service.py",
                "    failures: list[str] = []\n"
                "    for engine in audio_chain():\n"
                "        try:\n"
                "            engine.initialize()\n"
                "        except TTSEngineError as exc:\n"
                '            logger.warning("TTS engine %s unavailable, trying the next: %s", '
                "engine.name, exc)\n"
                "            failures.append(str(exc))\n"
                "            continue\n"
                "        return engine\n",
                "    failures: list[str] = []\n"
                "    skip_coqui = False\n"
                "    for engine in audio_chain():\n"
                "        if skip_coqui and isinstance(engine, CoquiTTS):\n"
                "            continue\n"
                "        try:\n"
                "            engine.initialize()\n"
                "        except TTSEngineError as exc:\n"
                '            logger.warning("TTS engine %s unavailable, trying the next: %s", '
                "engine.name, exc)\n"
                "            failures.append(str(exc))\n"
                "            # Edge refused: the network engines are not deployed here, go local\n"
                '            skip_coqui = isinstance(engine, EdgeTTS) and exc.reason == "refused"\n'
                "            continue\n"
                "        return engine\n",
            )
        ],
    ),
    Bug(
        name="no_text_only",
        seed="seed 004: no working fallbacks (the chain ended with an exception)",
        summary="the chain has no text-only end: get_engine() and synthesize() raise "
        "TTSEngineError ('no TTS engine available') when Edge, Coqui and espeak-ng all fail.",
        fails=[
            TEXT_ONLY,
            "call:synthesize answers with text only when every engine is down",
        ],
        edits=[
            Edit(
                "app/services/tts/tts_service.py",
                '    logger.warning("no audio TTS engine: answering with text only (%s)", '
                '"; ".join(failures))\n'
                "    return TextOnlyTTS()\n",
                '    raise TTSEngineError("no TTS engine available: " + "; ".join(failures))\n',
            ),
            Edit(
                "app/services/tts/tts_service.py",
                "    text_only = TextOnlyTTS()\n"
                "    return _result(text_only, text, text_only.synthesize(text), failures)\n",
                '    raise TTSEngineError("no TTS engine available: " + "; ".join(failures))\n',
            ),
        ],
    ),
    Bug(
        name="no_clear_expired",
        seed="seed 004: Missing `clear_expired` method, Redis connection issues",
        summary="CacheService has no clear_expired: the method's own claim fails, POST "
        "/api/v1/system/cache/clear answers 500 (AttributeError) whether Redis is up or down, "
        "and the memory optimizer's cache cleanup fails (a manual cleanup names it).",
        fails=[
            "call:the cache service has clear_expired, and it returns a count",
            "http:cache clear answers 200 with the expired entries removed",
            "http:cache clear answers 503 while redis is down",
            "http:a manual memory cleanup answers with what it did",
        ],
        edits=[
            Edit(
                "app/services/cache_service.py",
                "    def clear_expired(self) -> int:\n"
                '        """Remove the entries whose expiry has passed; how many were removed."""\n'
                "        now = time.time()\n"
                "        try:\n"
                "            redis = get_redis()\n"
                '            expired = [str(key) for key in redis.zrangebyscore(INDEX, "-inf", '
                "now)]\n"
                "            if not expired:\n"
                "                return 0\n"
                "            pipe = redis.pipeline()\n"
                "            pipe.zrem(INDEX, *expired)\n"
                "            pipe.delete(*(PREFIX + key for key in expired))\n"
                "            removed, _ = pipe.execute()\n"
                "        except Exception as exc:\n"
                "            raise _unavailable(exc) from exc\n"
                "        return int(removed)\n\n",
                "",
            )
        ],
    ),
    Bug(
        name="recursive_policy",
        seed="seed 004: Infinite recursion in RLS policies",
        summary="the SELECT policy of user_wishlists also shows public wishlists through a "
        "subquery on user_wishlists itself: every read of the table as `authenticated` fails "
        'with 42P17 infinite recursion detected in policy for relation "user_wishlists". '
        "(An INSERT without RETURNING checks only the INSERT policy: still 42501.)",
        fails=[
            "sql:a wishlist owner reads their own rows, without policy recursion",
            "sql:another user's wishlist rows are invisible",
            "sql:a request with no signed-in user reads no wishlist rows",
        ],
        edits=[
            Edit(
                "sql/critical_database_fixes.sql",
                "    FOR SELECT TO authenticated\n"
                "    USING (user_id = auth.uid());\n\n"
                'DROP POLICY IF EXISTS "Users can add to their own wishlists"',
                "    FOR SELECT TO authenticated\n"
                "    USING (\n"
                "        user_id = auth.uid()\n"
                "        OR EXISTS (\n"
                "            SELECT 1 FROM public.user_wishlists shared\n"
                "            WHERE shared.user_id = user_wishlists.user_id AND shared.is_public\n"
                "        )\n"
                "    );\n\n"
                'DROP POLICY IF EXISTS "Users can add to their own wishlists"',
            )
        ],
    ),
    Bug(
        name="missing_table",
        seed="seed 004: missing critical tables (affiliate_sales)",
        summary="the repair script never creates affiliate_sales (its table, indexes, policy, "
        "grant and rows are gone): reading or writing it fails with 42P01, and the RLS and "
        "index checks find one table and two indexes.",
        fails=[
            "sql:affiliate_sales exists and a user reads their own sales",
            "sql:users cannot write affiliate sales",
            "sql:row-level security is on for both tables",
            "sql:the tables have their indexes",
        ],
        edits=[
            Edit(
                "sql/critical_database_fixes.sql",
                "CREATE TABLE IF NOT EXISTS public.affiliate_sales (\n",
                "/*\nCREATE TABLE IF NOT EXISTS public.affiliate_sales (\n",
            ),
            Edit(
                "sql/critical_database_fixes.sql",
                "GRANT SELECT ON public.affiliate_sales TO authenticated;\n",
                "GRANT SELECT ON public.affiliate_sales TO authenticated;\n*/\n",
            ),
            Edit(
                "sql/critical_database_fixes.sql",
                "INSERT INTO public.affiliate_sales ",
                "/*\nINSERT INTO public.affiliate_sales ",
            ),
            Edit(
                "sql/critical_database_fixes.sql",
                "     'B09AWNING', 310.00, 12.40, 'paid')\nON CONFLICT (id) DO NOTHING;\n",
                "     'B09AWNING', 310.00, 12.40, 'paid')\nON CONFLICT (id) DO NOTHING;\n*/\n",
            ),
        ],
    ),
    Bug(
        name="optimizer_never_frees",
        seed="seed 004: Persistent high memory usage causing system instability (70-84.9%)",
        summary="the memory optimizer measures the process against the machine's memory, not "
        "the cgroup's limit (psutil.virtual_memory()'s view): on a 24 GB machine the 128 MB "
        "backend is at 1% when its cgroup is full, so no threshold is ever crossed, nothing is "
        "freed, and the report history grows until the limit kills the server.",
        fails=[MEMORY],
        edits=[
            Edit(
                "app/monitoring/cgroup_memory.py",
                "def memory_limit() -> Limit:\n    found = cgroup_limit()\n",
                "def memory_limit() -> Limit:\n"
                "    # the memory there is, as psutil.virtual_memory() sees it\n"
                '    found = Limit(machine_memory(), "machine")\n',
            )
        ],
    ),
]


def _claims_text(bug: Bug) -> str:
    """The reference claims under a header naming the bug."""
    lines = REFERENCE_CLAIMS.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("["))
    body = "".join(lines[start:]).replace('name = "wheels"', f'name = "wheels-{bug.name}"', 1)
    header = [
        f"# Regression {bug.name}: Wheels & Wins with one seed bug put back. GENERATED by make.py",
        "# from ../../signoff.toml (the reference claims, verbatim); edit make.py, not this file.",
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
    return "\n".join(wrapped) + "\n\n" + body


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


def build(bug: Bug, into: Path) -> None:
    """Write regression `bug` into folder `into` (created; must not exist)."""
    for tree in TREES:
        shutil.copytree(
            TARGET / tree, into / tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for edit in bug.edits:
        path = into / edit.path
        text = path.read_text()
        count = text.count(edit.old)
        if count != 1:
            raise SystemExit(
                f"make.py: {bug.name}: the text to replace occurs {count} times in "
                f"{edit.path} (expected once): the reference changed; update the edit"
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
