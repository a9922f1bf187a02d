"""The bundled async-job flow, driven by a claim's [load.flow] (given by signoff as JSON in
the environment variable SIGNOFF_FLOW).

Each user, again and again: sends `start` (with `body` as JSON), takes the job id from the field
`id` of the answer, sends `status` (with the id in place of `{id}`) every `poll` until the answer
contains `done`, then records a `job` timing (request type JOB, name "job") from the start
request to the answer that said done, and waits 1 s before its next job. Requests are named by
their line in the claim ("POST /reports/pdf", "GET /tasks/{id}"), so every status request shares
one name. A start or status request that fails, or a job not done within 60 s, is a failed job.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import HttpUser, constant, task

FLOW: dict[str, Any] = json.loads(os.environ.get("SIGNOFF_FLOW", "{}") or "{}")
JOB_LIMIT = 60.0  # seconds: a job not done by then is a failed job


def _split(line: str) -> tuple[str, str]:
    method, _, path = line.strip().partition(" ")
    return method.upper(), path.strip()


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


class AsyncJobUser(HttpUser):
    wait_time = constant(1.0)

    def _job_done(self, started: float, failure: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="JOB",
            name="job",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=failure,
            context={},
        )

    @task
    def job(self) -> None:
        if not FLOW:
            raise RuntimeError("SIGNOFF_FLOW is not set: this locustfile is driven by signoff")
        start_method, start_path = _split(FLOW["start"])
        status_method, status_path = _split(FLOW["status"])
        body = FLOW.get("body")
        started = time.perf_counter()
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        with self.client.request(
            start_method, start_path, name=FLOW["start"], catch_response=True, **kwargs
        ) as answer:
            try:
                job_id = answer.json()[FLOW["id"]]
            except Exception:
                answer.failure(f"no {FLOW['id']!r} in the answer ({answer.status_code})")
                self._job_done(started, RuntimeError("start failed"))
                return
        url = status_path.replace("{id}", str(job_id))
        poll = float(FLOW.get("poll", 0.2))
        while True:
            with self.client.request(
                status_method, url, name=FLOW["status"], catch_response=True
            ) as answer:
                try:
                    state = answer.json()
                except Exception:
                    answer.failure(f"no JSON in the status answer ({answer.status_code})")
                    self._job_done(started, RuntimeError("status failed"))
                    return
            if _contains(state, FLOW["done"]):
                self._job_done(started, None)
                return
            if time.perf_counter() - started > JOB_LIMIT:
                self._job_done(started, RuntimeError(f"not done after {JOB_LIMIT:g} s"))
                return
            time.sleep(poll)  # gevent-patched: yields to the other users
