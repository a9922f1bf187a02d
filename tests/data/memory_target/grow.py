from locust import FastHttpUser, constant, task


class Grow(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def grow(self) -> None:
        self.client.get("/grow")
