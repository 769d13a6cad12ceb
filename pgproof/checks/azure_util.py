"""Small helpers shared by the Azure judges (``checks.azure`` and ``checks.azure_ops``)."""

from __future__ import annotations

from pgproof.probes.azure import AzureInventory
from pgproof.verdict import CannotVerify, Unreachable


def srv(inv: AzureInventory) -> str:
    return f"flexible server {inv.server.get('name', inv.server_id.rsplit('/', 1)[-1])}"


def need(inv: AzureInventory, *families: str) -> None:
    """A refused fact family makes this layer error (with the reason); a missing API, unverifiable."""
    for fam in families:
        if fam in inv.denied:
            raise Unreachable(f"{inv.endpoint}: {fam} could not be read: {inv.denied[fam]}")
    for fam in families:
        if fam in inv.missing:
            raise CannotVerify(f"{fam}: {inv.missing[fam]}")


def param(inv: AzureInventory, name: str) -> str:
    """A server parameter's value (Configurations_ListByServer); absent means unverifiable."""
    need(inv, "configurations")
    value = inv.parameters.get(name)
    if value is None:
        raise CannotVerify(f"{srv(inv)}: server parameter {name} not reported")
    return value
