"""Locust files for [[load]] claims (a package only so that the wheel carries them as
signoff._loadtests; Locust loads each by its path)."""
