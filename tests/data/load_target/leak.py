from locust import FastHttpUser, constant, task


class Memory(FastHttpUser):
    wait_time = constant(0.4)

    @task
    def leak(self) -> None:
        self.client.get("/leak")
