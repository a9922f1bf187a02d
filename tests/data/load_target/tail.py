from locust import FastHttpUser, constant, task


class Tail(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def tail(self) -> None:
        self.client.get("/tail")
