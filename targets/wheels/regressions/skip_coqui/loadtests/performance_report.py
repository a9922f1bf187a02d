"""Locust: dashboards asking for performance reports, 10 a second each (the load that makes
the backend's memory grow: every report keeps its raw samples in the history)."""

from __future__ import annotations

from locust import FastHttpUser, constant_throughput, task


class DashboardUser(FastHttpUser):
    wait_time = constant_throughput(10)

    @task
    def performance_report(self) -> None:
        self.client.get(
            "/api/v1/system/performance/report?hours=6",
            name="GET /api/v1/system/performance/report",
        )
