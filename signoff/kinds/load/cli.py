"""`signoff load CLAIMS [--ui]`: the [[load]] claims alone, or Locust's web UI against the served
target for local exploration (services and server up, until Ctrl-C or the UI's own stop)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from signoff import processes
from signoff.errors import UsageError
from signoff.kinds.load.check import ALLOW_REMOTE_ENV, BUNDLED_FLOW, TIMES_PLUGIN, check_host, slug

UI_CHECK_EVERY = 0.5  # seconds


def add_arguments(parser: argparse.ArgumentParser, backends: tuple[str, ...]) -> None:
    parser.add_argument(
        "claims", nargs="?", default="signoff.toml", help="the claims file (default: signoff.toml)"
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="open Locust's web UI against the served target instead (until Ctrl-C)",
    )
    parser.add_argument(
        "--claim",
        metavar="NAME",
        help="with --ui: the load claim whose locustfile or flow to use (default: the first)",
    )
    parser.add_argument("--report-dir", metavar="DIR", help="write the report here")
    parser.add_argument("--services", default="auto", choices=backends)
    parser.add_argument("--deadline", default="30m", metavar="DURATION")
    parser.add_argument("--allow-remote", action="store_true", help=ALLOW_REMOTE_HELP)


ALLOW_REMOTE_HELP = "allow load on an address other than loopback (refused by default)"


def allow_remote(enabled: bool) -> None:
    """--allow-remote: seen by the load probe in this process (the pytest run is in-process)."""
    if enabled:
        os.environ[ALLOW_REMOTE_ENV] = "1"


def load_command(args: argparse.Namespace, run: object) -> int:
    """Without --ui: `signoff run CLAIMS --only load`. `run` is the CLI's own run function."""
    allow_remote(args.allow_remote)
    if not args.ui:
        args.only = "load"
        assert callable(run)
        return int(run(args))
    return _ui(args)


def _ui(args: argparse.Namespace) -> int:
    from signoff.claims.model import LoadClaim
    from signoff.server import ServerError, stop_target_server, target_server
    from signoff.services import stop_services
    from signoff.services.base import free_port
    from signoff.stages import configure, start

    ctx, refs = configure(args.claims, only="load", deadline="365d", report_dir=args.report_dir)
    specs = [r.spec for r in refs if isinstance(r.spec, LoadClaim)]
    if args.claim:
        specs = [s for s in specs if s.name == args.claim]
    if not specs:
        which = f" named {args.claim!r}" if args.claim else ""
        raise UsageError(f"{args.claims}: no [[load]] claim{which}")
    spec = specs[0]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        start(ctx, refs, args.services)
        try:
            server = target_server(ctx)
        except ServerError as exc:
            print(f"signoff: {exc.evidence()}", file=sys.stderr)
            return 3
        check_host(server.base_url)
        folder = ctx.report_dir / "load" / f"ui-{slug(spec.name)}"
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        locustfile = spec.locustfile if spec.locustfile is not None else BUNDLED_FLOW
        argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{locustfile},{TIMES_PLUGIN}",
            "--host",
            server.base_url,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--users",
            str(spec.users),
            "--spawn-rate",
            f"{spec.spawn_rate:g}",
        ]

        env = dict(os.environ)
        env["SIGNOFF_LOAD_DIR"] = str(folder)
        env["SIGNOFF_FLOW"] = json.dumps(spec.flow.model_dump(mode="json")) if spec.flow else ""
        with open(folder / "locust.log", "ab") as log:
            proc = processes.spawn(
                argv,
                role="locust-ui",
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(ctx.claims.path.parent),
            )
        print(
            f"signoff: Locust's web UI for {spec.name!r}: http://127.0.0.1:{port}  "
            f"(target {server.base_url}); Ctrl-C stops everything",
            flush=True,
        )
        while not stop.is_set() and proc.poll() is None:
            time.sleep(UI_CHECK_EVERY)
        processes.stop(proc, grace=3.0)
        return 0
    finally:
        try:
            stop_target_server(ctx)
            if ctx.hub is not None:
                ctx.hub.close()
            stop_services(ctx.services)
        finally:
            processes.stop_all()
