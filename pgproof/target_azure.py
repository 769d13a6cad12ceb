"""A target's optional ``[azure]`` section: the flexible server and the resources its controls read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pgproof.target_fields import Strict, is_ca_file, relative_to_config

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ARM_ID = r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/"


def _https(value: str | None, field: str) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError(f"{field} must be an https:// URL, got {value!r} (azure-core refuses "
                         "bearer tokens over plain HTTP)")
    return value.rstrip("/") if value else value


class Azure(Strict):
    """Azure Database for PostgreSQL flexible server; ``endpoint``/``authority`` point at a twin."""

    subscription_id: str
    resource_group: str = Field(pattern=r"^[-\w._()]{1,90}$")
    server_name: str
    key_vault: str | None = None  # vault name (Microsoft.KeyVault/vaults)
    admin_secret_name: str | None = None  # the admin password's secret in that vault
    backup_storage_account: str | None = None
    backup_container: str | None = None
    app_subnet_id: str | None = None
    nsg_ids: list[str] = []
    endpoint: str | None = None  # ARM endpoint override (default https://management.azure.com)
    authority: str | None = None  # Entra authority override (default login.microsoftonline.com)
    key_vault_url: str | None = None  # Key Vault data-plane override (default https://<vault>.vault.azure.net)
    blob_endpoint: str | None = None  # Blob data-plane override (default https://<account>.blob.core.windows.net)
    ca_file: Path | None = None  # CA bundle for a twin's TLS
    credential: Literal["default", "lab-static"] = "default"
    token_file: Path | None = None  # lab-static: the twin's bearer token (an owner-only file)

    _paths = field_validator("ca_file", "token_file", mode="before")(relative_to_config)

    @field_validator("subscription_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not GUID.match(value):
            raise ValueError(f"subscription_id must be a subscription GUID "
                             f"(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got {value!r}")
        return value

    @field_validator("server_name")
    @classmethod
    def _server(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", value):
            raise ValueError(f"server_name must be 3-63 lowercase letters, digits or hyphens "
                             f"(a flexible server name, not its FQDN), got {value!r}")
        return value

    @field_validator("app_subnet_id")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is not None and not re.match(ARM_ID + r"virtualNetworks/[^/]+/subnets/[^/]+$", value):
            raise ValueError(f"app_subnet_id must be a subnet resource id (/subscriptions/<id>/"
                             f"resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/"
                             f"<vnet>/subnets/<name>), got {value!r}")
        return value

    @field_validator("nsg_ids")
    @classmethod
    def _nsgs(cls, value: list[str]) -> list[str]:
        for v in value:
            if not re.match(ARM_ID + r"networkSecurityGroups/[^/]+$", v):
                raise ValueError(f"nsg_ids entries must be network security group resource ids "
                                 f"(.../providers/Microsoft.Network/networkSecurityGroups/<name>), "
                                 f"got {v!r}")
        return value

    @field_validator("endpoint", "authority", "key_vault_url", "blob_endpoint")
    @classmethod
    def _tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _https(value, str(info.field_name))

    @field_validator("ca_file", mode="after")
    @classmethod
    def _ca(cls, value: Path | None) -> Path | None:
        why = None if value is None else is_ca_file(value)
        if why:
            raise ValueError(why.replace("sslrootcert", "ca_file"))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Azure:
        if self.backup_container and not self.backup_storage_account:
            raise ValueError("backup_container needs backup_storage_account (the account holding it)")
        if self.admin_secret_name and not self.key_vault:
            raise ValueError("admin_secret_name needs key_vault (the vault holding the secret)")
        if self.credential == "lab-static" and not self.endpoint:
            raise ValueError("credential = 'lab-static' is only for a twin: set endpoint, or use "
                             "'default' (the DefaultAzureCredential chain) for real Azure")
        if self.token_file and self.credential != "lab-static":
            raise ValueError("token_file is the lab twin's token: it needs credential = 'lab-static'")
        return self
