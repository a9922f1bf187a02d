"""Faults: what signoff does to a service while a claim runs (hang, blackhole, refuse, ...)."""

from signoff.faults.controller import FaultState, ServiceLike, faulted, wait_answering
from signoff.faults.model import FAULT_KINDS, Fault, parse_fault
from signoff.faults.proxy import FaultProxy, ProxyHub

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultProxy",
    "FaultState",
    "ProxyHub",
    "ServiceLike",
    "faulted",
    "parse_fault",
    "wait_answering",
]
