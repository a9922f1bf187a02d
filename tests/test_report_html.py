"""signoff.html: one self-contained page per run, rendered from the ledger and the run folder's
artifacts. The verdicts below are real ones (the reports, wheels and archivist targets' runs,
every kind), with failing ones of each plotted kind beside them; a load claim's folder is made
here as Locust and the harness leave it. A headless Chromium (Debian's `chromium`, driven by
Playwright) opens the page with the network disabled."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signoff.engine.runner import Attempt, ChildResult, StepsResult
from signoff.kinds.degradation.timeline import Clock, timeline
from signoff.kinds.load.memory_log import MEMORY_FILE, write_memory_log
from signoff.kinds.load.stats import Sample, Settling
from signoff.ledger import Ledger
from signoff.report import write_reports
from signoff.report.again import NEVER_CHECKED, UNFINISHED, render_again
from signoff.report.compare import ClaimChange, Comparison
from signoff.report.html import HTML_FILE, render_html
from signoff.report.html_load import MAX_POINTS, window_for
from signoff.report.run_info import RunInfo
from signoff.verdict import Verdict
from tests.runs import claims, signoff

REAL = [
    {
        "id": "import:reports_app",
        "kind": "import",
        "status": "holds",
        "evidence": "",
        "budget": {"median_s": 0.05, "timeout_s": 10.0},
        "measured": {
            "median_s": 0.000349,
            "runs_s": [0.000659, 0.000324, 0.000325, 0.000379, 0.000349],
        },
        "duration_s": 0.351,
    },
    {
        "id": "timeout:redis ping gives up after 1 s on a hung server",
        "kind": "timeout",
        "status": "holds",
        "evidence": "ended after 1.196 s: raised "
        "reports_app.errors.ConnectionTimeoutError: redis did not answer "
        "within 1s: TimeoutError: Timeout reading from socket (at "
        "reports_app/redis_client.py:64)\n"
        "1 connection met the hang",
        "budget": {"within_s": 1.5, "tolerance_s": 0.15, "fault": "redis hang"},
        "measured": {
            "seconds": 1.1958,
            "outcome": "raised",
            "exception": "reports_app.errors.ConnectionTimeoutError",
            "connections_met": 1,
        },
        "duration_s": 1.282,
    },
    {
        "id": "http:health says healthy when every service answers",
        "kind": "http",
        "status": "holds",
        "evidence": 'GET /health answered 200 {"status": "healthy", "services": '
        '{"redis": {"status": "up", "latency_ms": 1.1}, "database": '
        '{"status": "up", "latency_ms": 2.3}}, "checked_in_ms": 6.4} in 13.6 '
        "ms",
        "budget": {
            "request": "GET /health",
            "within_s": 1.0,
            "tolerance_s": 0.1,
            "status": [200],
            "json": {"status": "healthy"},
        },
        "measured": {
            "status": 200,
            "seconds": 0.0136,
            "body": '{"status": "healthy", "services": {"redis": {"status": '
            '"up", "latency_ms": 1.1}, "database": {"status": "up", '
            '"latency_ms": 2.3}}, "checked_in_ms": 6.4}',
        },
        "duration_s": 1.723,
    },
    {
        "id": "cron:time",
        "kind": "cron",
        "status": "holds",
        "evidence": "slowest of 121 calls: 2.83 ms, returned 999 results, within the 50 "
        "ms claimed (+5 ms): occurrences('* 1-1 * * */1', 2000-01-01 "
        "01:00:00, 2000-01-17 01:40:00)\n"
        "100 generated cases (hypothesis seed 1720738439) and the boundary "
        "cases",
        "budget": {"examples": 100, "within_s": 0.05, "tolerance_s": 0.005},
        "measured": {
            "slowest_s": 0.002827,
            "median_s": 0.000141,
            "over_budget": 0,
            "hung": 0,
            "slowest_case": "occurrences('* 1-1 * * */1', 2000-01-01 01:00:00, "
            "2000-01-17 01:40:00)",
            "seed": 1720738439,
            "generated_cases": 100,
            "calls": 121,
            "worker_restarts": 0,
        },
        "duration_s": 2.938,
    },
    {
        "id": "cron:count",
        "kind": "cron",
        "status": "holds",
        "evidence": "at most 1000 results (limit 1000) in 121 calls; the most: "
        "occurrences('* * * * *', 2024-01-01 00:00:00, 2024-12-31 00:00:00) "
        "[dense: every minute over the whole horizon]\n"
        "100 generated cases (hypothesis seed 1720738439) and the boundary "
        "cases",
        "budget": {"examples": 100, "max_results": 1000},
        "measured": {
            "max_count": 1000,
            "over_limit": 0,
            "most_case": "occurrences('* * * * *', 2024-01-01 00:00:00, "
            "2024-12-31 00:00:00) [dense: every minute over the "
            "whole horizon]",
            "not_counted": 0,
            "seed": 1720738439,
            "generated_cases": 100,
            "calls": 121,
            "worker_restarts": 0,
        },
        "duration_s": 1.9,
    },
    {
        "id": "cron:correct",
        "kind": "cron",
        "status": "holds",
        "evidence": "right results in 121 calls; compared with croniter, or with both "
        "readings where the day fields read two ways\n"
        "100 generated cases (hypothesis seed 1720738439) and the boundary "
        "cases",
        "budget": {
            "examples": 100,
            "horizon_days": 365.0,
            "oracle": "croniter",
            "max_results": 1000,
        },
        "measured": {
            "wrong": 0,
            "judged": 121,
            "not_judged": 0,
            "seed": 1720738439,
            "generated_cases": 100,
            "calls": 121,
            "worker_restarts": 0,
        },
        "duration_s": 4.174,
    },
    {
        "id": "cron:invalid",
        "kind": "cron",
        "status": "holds",
        "evidence": "103 invalid expressions refused with ValueError, the slowest in 83 "
        "us\n"
        "84 generated cases (hypothesis seed 1720738439) and the boundary "
        "cases",
        "budget": {"examples": 100, "within_s": 0.05, "tolerance_s": 0.005, "raises": "ValueError"},
        "measured": {
            "refused": 103,
            "wrong": 0,
            "slowest_s": 8.3e-05,
            "seed": 1720738439,
            "generated_cases": 84,
            "calls": 103,
            "worker_restarts": 0,
        },
        "duration_s": 2.216,
    },
    {
        "id": "webhook:vectors",
        "kind": "webhook",
        "status": "holds",
        "evidence": "verify accepted the 2 published valid deliveries and signoff's own "
        "signatures over 5 raw bodies, and rejected the 4 published invalid "
        "ones; sign reproduces the published signatures and verify accepts "
        "what sign makes (4 checks)",
        "budget": {"scheme": "standard"},
        "measured": {"cases": 15, "failed": 0},
        "duration_s": 0.182,
    },
    {
        "id": "webhook:forgery",
        "kind": "webhook",
        "status": "holds",
        "evidence": "verify rejected all 32 forged and missing signatures, and 300 "
        "tampered deliveries (hypothesis, seed 2702233093); also all 13 "
        "other spellings of valid signatures and timestamps",
        "budget": {"scheme": "standard"},
        "measured": {
            "cases": 32,
            "accepted": 0,
            "property_examples": 300,
            "property_accepted": False,
            "seed": 2702233093,
            "spellings": 13,
            "spellings_accepted": 0,
            "accepted_spellings": [],
        },
        "duration_s": 4.81,
    },
    {
        "id": "webhook:timestamps",
        "kind": "webhook",
        "status": "holds",
        "evidence": "rejected stale and future timestamps beyond the 5m00s tolerance (6 "
        "cases, up to 10 years), accepted ones within it either way",
        "budget": {"scheme": "standard", "tolerance_s": 300.0},
        "measured": {"cases": 8, "wrong": 0},
        "duration_s": 0.185,
    },
    {
        "id": "webhook:rotation",
        "kind": "webhook",
        "status": "holds",
        "evidence": "accepted a valid signature among old keys' ones wherever it stood, "
        "and rejected headers with none valid (6 cases)",
        "budget": {"scheme": "standard"},
        "measured": {"cases": 6, "wrong": 0},
        "duration_s": 0.183,
    },
    {
        "id": "webhook:constant-time",
        "kind": "webhook",
        "status": "holds",
        "evidence": "the signature goes through hmac.compare_digest (at "
        "reports_app/webhooks.py:133); no == on it; timing: t = -0.9 (fails "
        "above 10: the nearly right signature slower) over 20000 calls, "
        "crops 0.5, 0.75, 0.9, 0.99, 1",
        "budget": {"scheme": "standard", "t_threshold": 10.0},
        "measured": {
            "verifications_spied": 3,
            "compare_digest_on_signature": 3,
            "eq_comparisons": 0,
            "t": -0.94,
            "crop": 0.99,
            "timed_calls": 20000,
            "median_ns": [22282, 22281],
        },
        "duration_s": 0.822,
    },
    {
        "id": "webhook:url-validator",
        "kind": "webhook",
        "status": "holds",
        "evidence": "refused all 48 private, loopback, link-local, metadata and non-http "
        "URLs in their tricky spellings, allowed 4 public ones\n"
        "it looked up 2 names: answered from signoff's own table "
        "(example.com is public, localhost and metadata.google.internal are "
        "not); nothing was looked up through DNS",
        "budget": {"must_refuse": 48, "must_allow": 4},
        "measured": {"allowed_wrongly": 0, "refused_wrongly": 0},
        "duration_s": 0.195,
    },
    {
        "id": "load:20 users: PDF requests start at once, every job completes",
        "kind": "load",
        "status": "holds",
        "evidence": "POST /reports/pdf p50 18.1 ms (bound 100 ms); POST /reports/pdf p95 "
        "294 ms (bound 1.000 s); GET /tasks/{id} p50 12.4 ms (bound 100 ms); "
        "GET /tasks/{id} p95 65.8 ms (bound 1.000 s); job p95 1.417 s (bound "
        "10.000 s); max rss 98.5 MiB (bound 488.3 MiB); memory grew 0 B from "
        "98.5 MiB to 98.5 MiB (bound 47.7 MiB); 20 users held for 10.000 s: "
        "382 HTTP requests (and 125 job timings, which Locust counts as "
        "requests), 38.2/s, 0.00% failed; generator CPU peak 16%",
        "budget": {
            "users": 20,
            "spawn_rate": 20.0,
            "duration_s": 10.0,
            "processes": 1,
            "failure_ratio": 0.01,
            "percentile_method": "nearest rank of every request's exact time; no tolerance",
            "latency_s": {
                "POST /reports/pdf": {"p50": 0.1, "p95": 1.0},
                "GET /tasks/{id}": {"p50": 0.1, "p95": 1.0},
                "job": {"p95": 10.0},
            },
            "memory": {"max_rss": 512000000, "max_growth": 50000000},
        },
        "measured": {
            "requests": 382,
            "failures": 0,
            "failure_ratio": 0.0,
            "rps": 38.2,
            "latency_s": {
                "GET /tasks/{id}": {
                    "count": 257,
                    "p50": 0.0124,
                    "p90": 0.04513,
                    "p95": 0.06576,
                    "p99": 0.10391,
                    "max": 0.11133,
                },
                "POST /reports/pdf": {
                    "count": 125,
                    "p50": 0.01811,
                    "p90": 0.27909,
                    "p95": 0.29395,
                    "p99": 0.33595,
                    "max": 0.34553,
                },
                "job": {
                    "count": 125,
                    "p50": 0.54503,
                    "p90": 0.90583,
                    "p95": 1.41706,
                    "p99": 1.46076,
                    "max": 1.94634,
                },
            },
            "users": {"wanted": 20, "peak": 20, "reached_after_s": 1.0, "held": True},
            "generator_cpu": {
                "samples": 19,
                "peak_percent": 15.8,
                "saturated_share": 0.0,
                "loop_ticks": 98,
                "loop_late_share": 0.0,
                "loop_worst_lag_ms": 41.1,
            },
            "memory": {
                "max_rss": 103325696,
                "baseline_rss": 103325696,
                "end_rss": 103325696,
                "growth": 0,
                "samples": 19,
            },
            "counts_match_locust_csv": True,
        },
        "duration_s": 11.612,
    },
    {
        "id": "websocket:a heartbeat every 2 s, silent clients closed after 6 s, "
        "answering ones kept",
        "kind": "websocket",
        "status": "holds",
        "evidence": "every one of 3 clients got its beats; the worst: gaps 2.00 s, 2.00 "
        "s, 2.00 s: longest 2.00 s within 2 s (+0.25 s); the beats were text "
        "messages\n"
        "3 answering clients stayed open 8.00 s: as claimed (8 s); each "
        'replied {"type": "pong"} to at least 3 messages\n'
        "an idle client (no pong, nothing sent) was closed by the server "
        '6.00 s after the connect with close code 4408 "idle timeout": '
        "within 6 s (+0.60 s); it left 2 heartbeats unanswered",
        "budget": {
            "path": "/ws",
            "heartbeat_s": 2.0,
            "beats": 3,
            "heartbeat_tolerance_s": 0.25,
            "idle_close_s": 6.0,
            "idle_close_tolerance_s": 0.6,
            "stays_open_s": 8.0,
            "stays_open_tolerance_s": 0.8,
            "clients": 3,
            "reply": '{"type": "pong"}',
        },
        "measured": {
            "gaps_s": [2.001, 1.999, 2.001],
            "longest_gap_s": 2.001,
            "beats_via": ["text"],
            "open_s": 8.0,
            "idle_closed_s": 6.0,
            "idle_close_code": 4408,
            "idle_close_reason": "idle timeout",
            "clients": 3,
            "handshake_max_s": 0.0094,
            "ping_rtt_median_s": 0.000642,
            "ping_rtt_max_s": 0.004814,
        },
        "duration_s": 8.012,
        "details": "client 1 (answering): handshake 5.39 ms; beats at 2.00 s text, 4.00 "
        "s text, 6.00 s text; still open when watching stopped at 8.00 s\n"
        "client 2 (answering): handshake 8.33 ms; beats at 2.00 s text, 4.00 "
        "s text, 6.00 s text; still open when watching stopped at 8.00 s\n"
        "client 3 (answering): handshake 8.76 ms; beats at 2.00 s text, 4.00 "
        "s text, 6.00 s text; still open when watching stopped at 8.00 s\n"
        "client 4 (idle): handshake 9.4 ms; beats at 2.00 s text, 4.00 s "
        'text; closed by the server at 6.00 s with close code 4408 "idle '
        'timeout"',
    },
    {
        "id": "call:the chain starts with Edge when every engine answers",
        "kind": "call",
        "status": "holds",
        "evidence": "returned app.services.tts.fallback_tts.EdgeTTS <EdgeTTS> in 6.06 ms",
        "budget": {
            "within_s": 1.0,
            "tolerance_s": 0.1,
            "returns": "app.services.tts.fallback_tts:EdgeTTS",
        },
        "measured": {"seconds": 0.006058, "outcome": "returned", "result": "<EdgeTTS>"},
        "duration_s": 0.151,
    },
    {
        "id": "degradation:tts falls back to Coqui when Edge is refused, and back to Edge",
        "kind": "degradation",
        "status": "holds",
        "evidence": "degraded in 6.53 ms: get_engine returned "
        "app.services.tts.fallback_tts:CoquiTTS\n"
        "1 connect refused\n"
        "recovered 2.52 ms after edge_tts came back: call 1 returned "
        "app.services.tts.fallback_tts:EdgeTTS",
        "budget": {
            "within_s": 1.0,
            "tolerance_s": 0.1,
            "fault": "edge_tts refuse",
            "recovers_s": 5.0,
            "recovers_tolerance_s": 0.25,
        },
        "measured": {
            "seconds": 0.0065,
            "result": "app.services.tts.fallback_tts:CoquiTTS",
            "recovered_after_s": 0.003,
            "recovery_calls": 1,
            "connections_met": 1,
        },
        "duration_s": 0.157,
    },
    {
        "id": "degradation:tts falls back to espeak-ng when Edge hangs and Coqui is refused",
        "kind": "degradation",
        "status": "fails",
        "evidence": "get_engine returned app.services.tts.fallback_tts:TextOnlyTTS, not "
        "a app.services.tts.fallback_tts:SystemTTS\n"
        "edge_tts: 1 connection met the hang\n"
        "coqui_tts: 1 connect refused",
        "budget": {"within_s": 2.0, "tolerance_s": 0.2, "fault": "edge_tts hang, coqui_tts refuse"},
        "measured": {
            "seconds": 1.0065,
            "result": "app.services.tts.fallback_tts:TextOnlyTTS",
            "connections_met": 2,
            "connections_met_edge_tts": 1,
            "connections_met_coqui_tts": 1,
        },
        "duration_s": 1.185,
    },
    {
        "id": "sql:a wishlist owner reads their own rows, without policy recursion",
        "kind": "sql",
        "status": "holds",
        "evidence": "SELECT item_name FROM user_wishlists as authenticated: 3 rows in "
        "1.45 ms (expected 3 rows)\n"
        "settings: "
        "request.jwt.claim.sub=11111111-1111-4111-8111-111111111111",
        "budget": {
            "query": "SELECT item_name FROM user_wishlists",
            "within_s": 0.5,
            "tolerance_s": 0.05,
            "role": "authenticated",
            "rows": 3,
        },
        "measured": {"seconds": 0.0015, "rows": 3, "sqlstate": None},
        "duration_s": 0.117,
    },
]

HUNG_IMPORT = {
    "id": "import:core.tasks",
    "kind": "import",
    "status": "fails",
    "evidence": "hangs: import core.tasks still running after 5.000 s, waiting on "
    "127.0.0.1:50977\nstuck at core/tasks.py:220 in <module>\n"
    "network: connect 127.0.0.1:50977 from core/tasks.py:220",
    "budget": {"median_s": 0.05, "timeout_s": 5.0},
    "measured": {"hung_after_s": 5.0, "runs_s": []},
    "details": "Thread 0x00007f (most recent call first):\n"
    '  File "core/tasks.py", line 220 in <module>',
}
SLOW_IMPORT = {
    "id": "import:core.models",
    "kind": "import",
    "status": "fails",
    "evidence": "median 338 ms over budget 50 ms (5 fresh interpreters)\nslowest imports: "
    "core.models 301 ms, sqlalchemy.orm 190 ms, sqlalchemy 120 ms",
    "budget": {"median_s": 0.05, "timeout_s": 5.0},
    "measured": {
        "median_s": 0.338,
        "runs_s": [0.331, 0.338, 0.352, 0.336, 0.341],
        "slowest_imports": [["core.models", 0.301], ["sqlalchemy.orm", 0.19], ["sqlalchemy", 0.12]],
    },
}
HUNG_TIMEOUT = {
    "id": "timeout:redis ping gives up after 1 s on a hung server (redis-py default retry)",
    "kind": "timeout",
    "status": "fails",
    "evidence": "still running after 22.000 s: stuck at redis/connection.py:517 in read_response",
    "budget": {"within_s": 1.0, "tolerance_s": 0.1, "fault": "redis hang"},
    "measured": {"seconds": None, "outcome": "still running", "watched_s": 22.0},
    "details": "Thread 0x1 (most recent call first):\n  File redis/connection.py, line 517",
}
CACHED_MOCK = {
    "id": "degradation:transcription degrades to a mock when redis dies, and recovers",
    "kind": "degradation",
    "status": "fails",
    "evidence": "still degraded 10.000 s after redis came back: 51 calls all returned "
    "core.services:MockTranscriptionService\n1 connect refused",
    "budget": {
        "within_s": 2.0,
        "tolerance_s": 0.2,
        "fault": "redis kill",
        "recovers_s": 10.0,
        "recovers_tolerance_s": 0.25,
    },
    "measured": {
        "seconds": 0.299,
        "result": "core.services:MockTranscriptionService",
        "recovered_after_s": None,
        "recovery_calls": 51,
        "timeline": [
            {"event": "fault on", "at_s": 0.0},
            {
                "event": "call",
                "from_s": 0.154,
                "at_s": 0.4529,
                "result": "core.services:MockTranscriptionService",
            },
            {
                "event": "then",
                "from_s": 0.4529,
                "at_s": 0.4529,
                "result": "raised core.exceptions.ServiceUnavailableError",
            },
            {"event": "lifted", "at_s": 0.4529},
            {"event": "back", "at_s": 0.5283},
            *(
                {
                    "event": "recovery call",
                    "at_s": round(0.5283 + 0.2 * i, 4),
                    "result": "core.services:MockTranscriptionService",
                    "degraded": True,
                }
                for i in range(51)
            ),
        ],
    },
    "details": "Traceback (most recent call last):\n  File core/services/__init__.py, line 60",
}
SILENT_WEBSOCKET = {
    "id": "websocket:a heartbeat every 2 s (the server sends none)",
    "kind": "websocket",
    "status": "fails",
    "evidence": "the worst of 3 clients: gaps 2.00 s, then nothing for 6.00 s until watching "
    "stopped",
    "budget": {
        "path": "/ws",
        "heartbeat_s": 2.0,
        "beats": 3,
        "heartbeat_tolerance_s": 0.25,
        "idle_close_s": 6.0,
        "idle_close_tolerance_s": 0.6,
    },
    "measured": {
        "gaps_s": [2.001],
        "longest_gap_s": 2.001,
        "open_gap_s": 6.0,
        "idle_closed_s": None,
        "idle_open_s": 6.61,
    },
}
CRON_WRONG = {
    "id": "cron:correct",
    "kind": "cron",
    "status": "fails",
    "evidence": "14 of 48 calls gave wrong results; compared with croniter\nsmallest failing case "
    "(hypothesis, seed 1165896704): occurrences('* * * * *', 2000-01-01 00:00:00, 2000-01-01 "
    "00:01:00): result 0 is not before end\nreplay with SIGNOFF_CRON_SEED=1165896704",
    "budget": {"examples": 100, "horizon_days": 365.0, "oracle": "croniter"},
    "measured": {"wrong": 14, "judged": 48, "not_judged": 0, "seed": 1165896704, "calls": 48},
    "details": "every wrong call:\noccurrences('* * * * *', ...)",
}
LEAKY_TIMING = {
    "id": "webhook:constant-time",
    "kind": "webhook",
    "status": "fails",
    "evidence": "verify takes longer the more of the signature matches: Welch's t = 712.6",
    "budget": {"scheme": "standard", "t_threshold": 10.0},
    "measured": {"verifications_spied": 3, "t": 712.6, "t_confirm": 698.1, "timed_calls": 20000},
}
NOT_CHECKED = {
    "id": "http:health says degraded when redis is down",
    "kind": "http",
    "status": "error",
    "evidence": NEVER_CHECKED,
}
FAILING = [
    HUNG_IMPORT,
    SLOW_IMPORT,
    HUNG_TIMEOUT,
    CACHED_MOCK,
    SILENT_WEBSOCKET,
    CRON_WRONG,
    LEAKY_TIMING,
    NOT_CHECKED,
]
KINDS = (
    "import",
    "timeout",
    "degradation",
    "http",
    "call",
    "sql",
    "cron",
    "webhook",
    "load",
    "websocket",
)


def _verdict(data: dict[str, Any], **changes: Any) -> Verdict:
    return Verdict.from_json(json.loads(json.dumps({**data, **changes})))  # a copy


def _load_folder(
    run: Path, v: Verdict, *, seconds: float, rps: float, names: tuple[str, ...]
) -> Verdict:
    """The claim's folder as Locust and the harness leave it: every request's exact time, the
    users history, memory.csv, Locust's own HTML; and the evidence line naming the folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", v.id.partition(":")[2]).strip("-")[:80]
    folder = run / "load" / slug
    folder.mkdir(parents=True)
    start = 1_796_215_154.0
    (folder / "started-1").write_text(f"{start}\n")
    with open(folder / "times-1.jsonl", "w") as out:
        n = int(seconds * rps)
        for i in range(n):
            t = start + i / rps
            name = names[i % len(names)]
            ms = 20 + (i % 37) * 3 + (300 if i % 101 == 0 else 0)
            method = "JOB" if name == "job" else name.split()[0]
            row = {"t": round(t, 4), "n": name, "m": method, "ms": ms, "ok": i % 211 != 5}
            out.write(json.dumps(row) + "\n")
    history = ["Timestamp,User Count,Type,Name,Requests/s"]
    history += [
        f"{int(start) + s},{min(s * 10, 20)},,Aggregated,{rps:.1f}" for s in range(int(seconds))
    ]
    (folder / "locust_stats_history.csv").write_text("\n".join(history) + "\n")
    samples = [
        Sample(i * 0.5, {1: 12.0}, 90_000_000 + i * 10_000, 70_000_000 + i * 5_000)
        for i in range(int(seconds * 2))
    ]
    settling = Settling(128_000_000, 0.65, 30.25, [(0.0, 60_000_000), (0.25, 57_000_000)])
    write_memory_log(folder, samples, start, settling, start + seconds + 0.5)
    (folder / "locust.html").write_text("<html>Locust</html>")
    lines = [line for line in v.evidence.splitlines() if not line.startswith("Locust's report")]
    v.evidence = "\n".join([*lines, f"Locust's report: /elsewhere/{slug}"])
    return v


def _run(
    tmp_path: Path, *, copies: int = 1, loads: int = 1, seconds: float = 10.0
) -> tuple[RunInfo, list[Verdict], Path]:
    """A run folder with every kind: the real verdicts `copies` times (ids numbered past the
    first), the failing ones, and `loads` load claims with their folders."""
    folder = tmp_path / "run"
    folder.mkdir()
    verdicts = [_verdict(d) for d in FAILING]
    for copy in range(copies):
        for data in REAL:
            if data["kind"] == "load":
                continue
            suffix = f" (copy {copy})" if copy else ""
            if data["id"] + suffix not in {v.id for v in verdicts}:  # a failing one has it
                verdicts.append(_verdict(data, id=data["id"] + suffix))
    load = next(d for d in REAL if d["kind"] == "load")
    names = ("POST /reports/pdf", "GET /tasks/{id}", "job")
    for i in range(loads):
        v = _verdict(load, id=f"{load['id']} #{i + 1}")
        verdicts.append(_load_folder(folder, v, seconds=seconds, rps=40.0, names=names))
    info = RunInfo(
        "reports",
        "/srv/reports/signoff.toml",
        started=datetime(2026, 12, 2, 12, 39, 28, tzinfo=UTC),
        duration_s=52.973,
        python="3.11.7",
        services={"redis": "embedded 6.2.14", "postgres": "embedded 16.2"},
        service_start_s={"redis": 0.03, "postgres": 1.4},
        finished=True,
    )
    return info, verdicts, folder


def _svgs(page: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed: each must be well-formed XML."""
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


# -- what the page says --------------------------------------------------------------------------


def test_the_verdict_is_at_the_top_and_failing_claims_come_first_opened(tmp_path: Path) -> None:
    info, verdicts, folder = _run(tmp_path)
    page = render_html(info, verdicts, folder)
    head = page[: page.index('<section class="claims">')]
    assert '<span class="verdict-word">FAILS</span>' in head and "reports" in head
    counts = {s: sum(v.status == s for v in verdicts) for s in ("fails", "error", "holds")}
    assert counts["fails"] >= 7 and counts["error"] == 1
    assert f"<b>{counts['fails']}</b> fail" in head and f"<b>{counts['holds']}</b> hold" in head
    assert "<b>1</b> could not be checked" in head
    for fact in ("2026-12-02 12:39:28 UTC", "52.973 s", "3.11.7", "embedded 6.2.14", "ready in"):
        assert fact in head
    positions = {v.id: page.index(f'<span class="id">{_escaped(v.id)}</span>') for v in verdicts}
    fails = [positions[v.id] for v in verdicts if v.status == "fails"]
    errors = [positions[v.id] for v in verdicts if v.status == "error"]
    holds = [positions[v.id] for v in verdicts if v.status == "holds"]
    assert max(fails) < min(errors) <= max(errors) < min(holds)
    assert page.count('<details class="claim claim-fails" open>') == counts["fails"]
    assert page.count('<details class="claim claim-holds">') == len(holds)


def _escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def test_a_claim_opens_to_its_evidence_details_and_every_figure(tmp_path: Path) -> None:
    info, verdicts, folder = _run(tmp_path)
    page = render_html(info, verdicts, folder)
    assert "replay with SIGNOFF_CRON_SEED=1165896704" in page  # the shrunk case and its seed
    assert '<pre class="details">Thread 0x00007f (most recent call first):' in page
    assert "<th>measured.median_s</th><td>338 ms</td>" in page
    assert "<th>measured.latency_s.job.p95</th><td>1.417 s</td>" in page  # seconds in a _s table
    assert "<th>budget.memory.max_rss</th><td>488.3 MiB (512000000)</td>" in page


def test_every_kind_gets_its_plots(tmp_path: Path) -> None:
    info, verdicts, folder = _run(tmp_path)
    page = render_html(info, verdicts, folder)
    assert {v.kind for v in verdicts} == set(KINDS)
    svgs = _svgs(page)
    assert len(svgs) > 50
    labels = [s.get("aria-label", "") for s in svgs]
    # imports: one strip per module in the overview, and an over-budget module's children
    assert sum(label.startswith("reports_app:") for label in labels) >= 2
    assert any(label.startswith("sqlalchemy.orm: ") for label in labels)
    # timeouts: measured against within, the hung one drawn as still running
    assert 'class="bar-hung"' in page and "still running when watching stopped at 22.000 s" in page
    # degradation: the timeline, its 51 recovery calls still the stand-in
    timeline_svg = next(s for s in svgs if s.get("aria-label") == f"{CACHED_MOCK['id']}: timeline")
    assert len([c for c in timeline_svg.iter() if c.get("class") == "stand-in"]) == 51
    assert not [c for c in timeline_svg.iter() if c.get("class") == "real"]  # it never recovered
    # load: latency over time per request name with its bounds, users and rps, memory
    for name in ("POST /reports/pdf", "GET /tasks/{id}", "job"):
        assert f"{name}: latency over time" in labels
    assert "users running" in labels and "requests per second" in labels
    assert "the server's memory over time" in labels
    assert "p95 bound 1.000 s" in page or "p95 bound 1 s" in page
    # websocket gaps, the silent one's open gap; cron and webhook cases; the timing test
    assert any(label.startswith("gap 1:") for label in labels)
    assert "no beat came" in page
    assert any(label.startswith("cron:correct: 48 tried, 14 failed") for label in labels)
    assert any(label.startswith("webhook:forgery: 332 tried, 0 failed") for label in labels)
    assert "|t| 712.6 / 10" in page


def test_long_series_are_cut_to_at_most_500_points(tmp_path: Path) -> None:
    assert window_for(3600.0, 1_000_000) * MAX_POINTS >= 3600
    info, verdicts, folder = _run(tmp_path, loads=1, seconds=1800.0)
    page = render_html(info, verdicts, folder)
    lines = [s for svg in _svgs(page) for s in svg.iter() if s.tag.endswith("polyline")]
    assert lines, "no line drawn"
    assert max(len(p.get("points", "").split()) for p in lines) <= MAX_POINTS + 1


def test_a_hundred_claims_with_three_load_claims_stay_under_2_mb(tmp_path: Path) -> None:
    info, verdicts, folder = _run(tmp_path, copies=6, loads=3, seconds=300.0)
    assert len(verdicts) >= 100
    written = write_reports(info, verdicts, folder)
    page = folder / HTML_FILE
    assert page in written
    assert page.stat().st_size < 2_000_000, f"{page.stat().st_size} bytes"


def test_the_page_loads_nothing_and_runs_no_script(tmp_path: Path) -> None:
    info, verdicts, folder = _run(tmp_path)
    hostile = Verdict(
        "call:<script>alert(1)</script>",
        "call",
        "fails",
        evidence='returned "<img src=x onerror=alert(1)>"',
    )
    page = render_html(info, [*verdicts, hostile], folder)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert "call:&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page


def test_with_a_baseline_the_top_counts_changes_and_each_claim_has_its_badge(
    tmp_path: Path,
) -> None:
    info, verdicts, folder = _run(tmp_path)
    changes = [
        ClaimChange(
            "import:core.models",
            "import",
            "worse",
            "holds",
            "fails",
            "median_s",
            "41 ms",
            "338 ms",
            "+297 ms, beyond its noise of 9 ms",
        ),
        ClaimChange(
            "import:reports_app",
            "import",
            "better",
            "holds",
            "holds",
            "median_s",
            "1.2 ms",
            "349 us",
        ),
        ClaimChange(CACHED_MOCK["id"], "degradation", "now fails", "holds", "fails"),
        ClaimChange("sql:an old claim", "sql", "gone", "holds", None),
    ]
    page = render_html(info, verdicts, folder, Comparison("reports/2026-12-01-reports", changes))
    head = page[: page.index('<section class="claims">')]
    assert "Against the baseline reports/2026-12-01-reports: regressed" in head
    assert '<span class="change change-bad"><b>1</b> now fails</span>' in head
    assert '<span class="change change-good"><b>1</b> better</span>' in head
    assert "<code>sql:an old claim</code>" in head  # gone: listed, not a claim of this run
    claim = page[page.index('<span class="id">import:core.models</span>') :][:600]
    assert 'class="change change-bad" title="41 ms → 338 ms; +297 ms, beyond its noise' in claim
    assert "41 ms → 338 ms" in claim


def test_a_plot_that_cannot_be_drawn_says_why_and_the_page_renders(tmp_path: Path) -> None:
    info, _, folder = _run(tmp_path)
    broken = _verdict(CACHED_MOCK)
    broken.measured["timeline"] = [{"event": "fault on"}, {"event": "back", "at_s": "soon"}]
    page = render_html(info, [broken], folder)
    assert '<p class="plot-error">not drawn: ' in page
    assert f'<span class="id">{broken.id}</span>' in page


def test_signoff_report_renders_the_page_of_a_killed_run(tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    folder.mkdir()
    RunInfo(
        "again",
        "signoff.toml",
        started=datetime.now(UTC) - timedelta(seconds=30),
        planned=[("call:a", "call"), ("call:b", "call")],
    ).save(folder)
    Ledger(folder / "ledger.jsonl").append(
        Verdict("call:a", "call", "holds", measured={"seconds": 0.01})
    )
    render_again(folder)
    page = (folder / HTML_FILE).read_text(encoding="utf-8")
    assert html.escape(UNFINISHED) in page and html.escape(NEVER_CHECKED) in page
    assert '<span class="verdict-word">FAILS</span>' in page


# -- the figures the kinds record for the page -------------------------------------------------


def test_the_degradation_timeline_places_each_call_from_the_fault_on() -> None:
    clock = Clock({"fault on": 100.0, "lifted": 100.5, "back": 101.5})

    def step(name: str, seconds: float, **more: Any) -> ChildResult:
        return ChildResult("returned", name, seconds, seconds, **more)

    still = Attempt(0.2, 0.2, "returned", "core.services:Mock", True)
    real = Attempt(0.4, 0.01, "returned", "core.services:Real", False)
    result = StepsResult(
        "ended",
        (
            step("call", 0.3, result_type="core.services:Mock"),
            ChildResult("raised", "then", 0.1, 0.1, exc_type="core.errors:Unavailable"),
            step("recovers", 0.5, attempts=(still, real)),
        ),
        {"lifted": "go"},
        2.0,
        (),
        "",
        0,
    )
    events = timeline(clock, result)
    assert [e["event"] for e in events] == [
        "fault on",
        "call",
        "then",
        "lifted",
        "back",
        "recovery call",
        "recovery call",
    ]
    call, then = events[1], events[2]
    assert (call["from_s"], call["at_s"]) == (0.1, 0.4)  # back from the barrier at 0.5
    assert (then["from_s"], then["at_s"], then["result"]) == (
        0.4,
        0.5,
        "raised core.errors.Unavailable",
    )
    assert [(e["at_s"], e["degraded"]) for e in events[-2:]] == [(1.7, True), (1.9, False)]
    assert timeline(Clock({"fault on": 1.0}), result) == []  # no recovery: no timeline


def test_the_memory_log_holds_the_load_and_the_settling(tmp_path: Path) -> None:
    samples = [Sample(0.5, {}, 1000, 700), Sample(1.0, {}, None, 800)]
    settling = Settling(2000, 0.65, 30.0, [(0.0, 900), (0.25, 600)])
    path = write_memory_log(tmp_path, samples, 50.0, settling, 62.0)
    assert path == tmp_path / MEMORY_FILE
    assert path.read_text().splitlines() == [
        "t_s,phase,rss_bytes,cgroup_bytes",
        "0.500,load,1000,700",
        "1.000,load,,800",
        "12.000,settling,,900",
        "12.250,settling,,600",
    ]
    assert write_memory_log(tmp_path / "none", [], None) is None


SLOW_TARGET = """
[target]
name = "slow"
pythonpath = ["."]

[imports]
timeout = "10s"
repeat = 2

[imports.budgets]
"slowpkg" = "1ms"
"""


@pytest.mark.slow
def test_a_run_writes_the_page_with_an_over_budget_import_and_its_slowest_children(
    tmp_path: Path,
) -> None:
    package = tmp_path / "slowpkg"
    package.mkdir()
    (package / "__init__.py").write_text("import time\ntime.sleep(0.02)\nimport slowpkg.child\n")
    (package / "child.py").write_text("import time\ntime.sleep(0.03)\n")
    (tmp_path / "signoff.toml").write_text(SLOW_TARGET)
    report = tmp_path / "report"
    done = signoff("run", str(tmp_path / "signoff.toml"), "--report-dir", str(report), timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    found = claims(report)["import:slowpkg"]
    slowest = dict(found["measured"]["slowest_imports"])
    assert slowest["slowpkg.child"] >= 0.03 and slowest["slowpkg"] >= slowest["slowpkg.child"]
    page = (report / HTML_FILE).read_text(encoding="utf-8")
    labels = [svg.get("aria-label", "") for svg in _svgs(page)]
    assert any(label.startswith("slowpkg.child: ") for label in labels)
    assert '<span class="verdict-word">FAILS</span>' in page


# -- in a real browser ---------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture
def chromium() -> str:
    """The system's Chromium, for Playwright to drive (it downloads no browser of its own)."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright is not installed (the dev extra: pip install -e '.[dev]')"
    path = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if path is None and problem is None:
        problem = (
            "no Chromium on this machine (Debian: apt-get install chromium; .ci/debian-packages)"
        )
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


def test_the_page_in_headless_chromium_offline(tmp_path: Path, chromium: str) -> None:
    from playwright.sync_api import Request, Route, sync_playwright

    info, verdicts, folder = _run(tmp_path)
    write_reports(info, verdicts, folder)
    page_file = folder / HTML_FILE
    errors: list[str] = []
    left: list[str] = []

    def block(route: Route, request: Request) -> None:
        if request.url.startswith("file:"):
            route.continue_()
        else:
            left.append(request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], timeout=60_000)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.route("**/*", block)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith("file:") else left.append(r.url))
            page.goto("about:blank")
            blank = page.screenshot()
            page.goto(page_file.as_uri(), wait_until="load", timeout=30_000)
            shot = page.screenshot(full_page=False)
            text = page.inner_text("body")
            (tmp_path / "page.png").write_bytes(shot)
        finally:
            browser.close()
    assert errors == [] and left == []
    assert len(shot) > 10 * len(blank), "the screenshot is as good as blank"
    assert "FAILS" in text
    missing = [v.id for v in verdicts if v.id not in text]
    assert missing == []
