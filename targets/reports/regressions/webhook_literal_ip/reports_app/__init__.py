"""The reports app with one regression: the URL validator checks only literal private IPs."""
