from locust import FastHttpUser, constant, task


class Near(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def near(self) -> None:
        self.client.get("/near")
