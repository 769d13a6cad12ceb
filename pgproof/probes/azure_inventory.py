"""What one Azure inventory pass found (``AzureInventory``) and ``raw``, the REST shape of an SDK
model; apart from ``probes/azure.py`` so the calls and the probe import it without each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AzureInventory:
    """Facts about one flexible server and the resources around it."""

    endpoint: str
    server_id: str
    server: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, str | None] = field(default_factory=dict)
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)
    subnet: dict[str, Any] | None = None
    app_subnet: dict[str, Any] | None = None
    app_subnet_id: str | None = None
    nsgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    vault: dict[str, Any] | None = None
    key: dict[str, Any] | None = None
    key_rotation: dict[str, Any] | None = None
    secret_name: str | None = None
    secret: dict[str, Any] | None = None
    storage_account_name: str | None = None
    storage_account: dict[str, Any] | None = None
    blob_service: dict[str, Any] | None = None
    container_name: str | None = None
    container: dict[str, Any] | None = None
    container_public: str | None = None  # Blob data plane (Azurite or real): public access level
    management_policy: dict[str, Any] | None = None
    locks: list[dict[str, Any]] = field(default_factory=list)
    metric_alerts: list[dict[str, Any]] = field(default_factory=list)
    action_groups: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    diagnostic_settings: list[dict[str, Any]] = field(default_factory=list)
    workspaces: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def props(self) -> dict[str, Any]:
        return self.server.get("properties") or {}


def raw(model: Any) -> dict[str, Any]:
    """REST-shaped dict from an SDK model (typespec models are mappings; autorest ones serialize)."""
    if model is None:
        return {}
    if isinstance(model, Mapping):
        return model.as_dict() if hasattr(model, "as_dict") else dict(model)
    out: dict[str, Any] = model.serialize(keep_readonly=True)
    return out
