"""The claim-driven suites: one thin test per claim; the probes in signoff/ do the work."""
