"""`signoff load CLAIMS [--ui]`: the [[load]] claims alone, or Locust's web UI against the served
target for local exploration (services and server up, until Ctrl-C or the UI's own stop).
`signoff load CLAIMS --master [--bind HOST:PORT] --expect-workers N`: each claim's Locust master
waits for N workers that `signoff worker --master HOST:PORT` starts, on this machine or others
(docs/distributed.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from signoff import processes
from signoff.errors import UsageError
from signoff.kinds.load.check import (
    ALLOW_REMOTE_ENV,
    BUNDLED_FLOW,
    DEFAULT_BIND,
    EXPECT_WORKERS_ENV,
    HOST_ENV,
    MASTER_ENV,
    TIMES_PLUGIN,
    check_host,
    parse_address,
    slug,
    worker_argv,
)

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
    parser.add_argument(
        "--master",
        action="store_true",
        help="run each claim's Locust master only, for workers started by `signoff worker` "
        "(here or on other machines)",
    )
    parser.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help=f"with --master: where the master listens (default {DEFAULT_BIND}; another "
        "address than loopback needs --allow-remote)",
    )
    parser.add_argument(
        "--host",
        metavar="URL",
        help="with --master: load this target (reachable from every worker) instead of the "
        "served one, which listens on this machine's loopback; not loopback: --allow-remote",
    )
    parser.add_argument(
        "--expect-workers",
        type=int,
        metavar="N",
        help="with --master: the workers each claim waits for (and whose users it counts)",
    )


ALLOW_REMOTE_HELP = "allow load on an address other than loopback (refused by default)"


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """`signoff worker`: a Locust worker of a `signoff load --master`."""
    parser.add_argument(
        "--master",
        required=True,
        metavar="HOST:PORT",
        help="the master's address (`signoff load --master --bind HOST:PORT`)",
    )
    parser.add_argument(
        "-f",
        "--locustfile",
        metavar="FILE[,FILE]",
        help="the same locustfiles as the claim's (signoff's timing plugin is added); default: "
        "get them from the master as each run starts (Locust's `-f -`)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=0,
        metavar="N",
        help="stop after N runs of the master (one per [[load]] claim; default 0: until "
        "Ctrl-C, or no master answers within Locust's wait of 5 minutes)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a master on an address other than loopback (its locustfiles run here)",
    )


def allow_remote(enabled: bool) -> None:
    """--allow-remote: seen by the load probe in this process (the pytest run is in-process)."""
    if enabled:
        os.environ[ALLOW_REMOTE_ENV] = "1"


def load_command(args: argparse.Namespace, run: object) -> int:
    """Without --ui: `signoff run CLAIMS --only load`. `run` is the CLI's own run function."""
    allow_remote(args.allow_remote)
    if args.master:
        if args.ui:
            raise UsageError("signoff load: --master and --ui do not go together")
        if args.expect_workers is None or args.expect_workers < 1:
            raise UsageError("signoff load --master: --expect-workers N (at least 1) is needed")
        host, port = parse_address(args.bind or DEFAULT_BIND, "--bind")
        if args.host:
            if urlsplit(args.host).scheme not in ("http", "https"):
                raise UsageError(f"--host: expected an http(s) URL, found {args.host!r}")
            check_host(args.host)
            os.environ[HOST_ENV] = args.host
        # read by the load probe, in this process (the pytest run is in-process)
        os.environ[MASTER_ENV] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        os.environ[EXPECT_WORKERS_ENV] = str(args.expect_workers)
    elif args.bind or args.expect_workers is not None or args.host:
        raise UsageError("signoff load: --bind, --expect-workers and --host go with --master")
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


def worker_command(args: argparse.Namespace) -> int:
    """`signoff worker --master HOST:PORT`: Locust workers of that master, one after the other
    (each [[load]] claim's master is a Locust run of its own, and a worker ends with it), until
    `--runs` runs, Ctrl-C, or a Locust worker that fails: no master answered within Locust's own
    wait (5 minutes), or it could not load its locustfiles. Each gets its locustfiles from the
    master unless given `-f`; a private temp folder holds what Locust downloads, removed after
    each run. Exit status: 0 the runs asked for are done, 3 a worker failed, 130 interrupted."""
    host, port = parse_address(args.master, "--master", allow_remote=args.allow_remote)
    files = None
    if args.locustfile:
        names = [f.strip() for f in args.locustfile.split(",") if f.strip()]
        missing = [f for f in names if not Path(f).is_file()]
        if missing:
            raise UsageError(f"-f: no such file: {', '.join(missing)}")
        files = ",".join([*(str(Path(f).resolve()) for f in names), str(TIMES_PLUGIN)])
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for line in processes.reap_leftovers():  # a worker of a `signoff worker` killed -9
        print(f"signoff: stopped a leftover of a killed run: {line}", file=sys.stderr)
    runs = 0
    try:
        while not stop.is_set() and (args.runs <= 0 or runs < args.runs):
            temp = processes.temp_folder("signoff-worker-")
            env = {k: v for k, v in os.environ.items() if k != "SIGNOFF_LOAD_DIR"}
            env["TMPDIR"] = str(temp)  # where `-f -` writes the master's locustfiles
            print(f"signoff: worker {runs + 1} for the master at {host}:{port}", flush=True)
            try:
                proc = processes.spawn(
                    worker_argv(host, port, files, quiet=False), role="locust-worker", env=env
                )
                while proc.poll() is None and not stop.is_set():
                    time.sleep(UI_CHECK_EVERY)
                processes.stop(proc, grace=5.0)
            finally:
                processes.remove_folder(temp)
            if stop.is_set():
                break
            if proc.returncode != 0:
                print(
                    f"signoff: the Locust worker ended with status {proc.returncode} (no "
                    f"master at {host}:{port}, or its locustfiles failed: its log is above)",
                    file=sys.stderr,
                )
                return 3
            runs += 1
    finally:
        processes.stop_all()
    print(f"signoff: {runs} run{'s' if runs != 1 else ''} of the master done", flush=True)
    return 130 if stop.is_set() else 0
