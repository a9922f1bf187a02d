from locust import FastHttpUser, constant, task


class Cache(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def cache(self) -> None:
        self.client.get("/cache")
