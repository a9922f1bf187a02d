"""targets/reports/reports_app cut down to its cron service, with one bug put back (see
../signoff.toml)."""
