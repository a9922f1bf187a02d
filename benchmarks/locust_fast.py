"""The load benchmark's locustfile: every user asks for GET /fast again at once (no wait), so
the figure is what the generator can send, not what users would."""

from locust import FastHttpUser, task


class Fast(FastHttpUser):
    @task
    def fast(self) -> None:
        self.client.get("/fast")
