from locust import FastHttpUser, constant, task


class Slow(FastHttpUser):
    wait_time = constant(0)

    @task
    def slow(self) -> None:
        self.client.get("/slow")
