"""Saturates the generator on purpose: no wait, and each user burns CPU of its own between
requests (as a locustfile that builds heavy payloads would)."""

import hashlib

from locust import FastHttpUser, task


class Flood(FastHttpUser):
    # no wait time: every user sends again at once

    @task
    def fast(self) -> None:
        data = b"x" * 4096
        for _ in range(2000):
            data = hashlib.sha256(data).digest() * 128
        self.client.get("/fast")
