from locust import FastHttpUser, constant, task


class Hold(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def hold(self) -> None:
        self.client.get("/hold")
