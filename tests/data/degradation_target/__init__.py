"""A fake target for the degradation claims: a service layer over Redis that degrades to a
mock in the ways real code does, some of them wrong (the seeds' singleton that caches the mock
forever, a getter with no fallback, one that connects with no timeout)."""
