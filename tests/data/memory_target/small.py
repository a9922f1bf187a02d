from locust import FastHttpUser, constant, task


class Small(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def small(self) -> None:
        self.client.get("/small")
