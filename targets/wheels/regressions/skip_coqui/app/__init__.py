"""Wheels & Wins backend (seed 004), a small but real stand-in: `app.main:app` is the FastAPI
app. Importing the package imports nothing heavy; every service connects on first use."""
