from signoff._fixtures.run import fault_proxy, signoff_run, signoff_services

__all__ = ["fault_proxy", "signoff_run", "signoff_services"]
