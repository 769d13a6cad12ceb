"""Azure SDK clients for one ``[azure]`` target: the probes and the lab twin share them.

Why one factory: the endpoint/authority overrides, the CA bundle for a twin and
the credential choice must be identical for the probe that reads and the lab
that provisions, or the twin would prove a different code path than real Azure.
Real Azure uses azure-identity's ``DefaultAzureCredential`` chain (environment,
workload identity, managed identity, Azure CLI, ...); a twin uses a static
token (``credential = "lab-static"``): the one in ``token_file`` (the lab writes
it, owner-only, and its twin accepts no other), else a fixed one a test twin accepts.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from pgproof.target import Azure

ARM = "https://management.azure.com"
# Azurite's published development account (docs: "Use the Azurite emulator", well-known
# storage account and key). Public by design, not a secret: the lab-static credential only.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
LAB_TOKEN = "pgproof-lab-twin"


class StaticTokenCredential:
    """A fixed bearer token for a twin, or the one in ``token_file``; never used against real Azure."""

    def __init__(self, token: str = LAB_TOKEN, token_file: Path | None = None) -> None:
        self.token, self.token_file = token, token_file

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token = self.token
        if self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except OSError as exc:
                raise ClientAuthenticationError(
                    f"cannot read the twin's token_file {self.token_file}: {exc.strerror}") from None
        return AccessToken(token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


def body(doc: dict[str, Any]) -> io.BytesIO:
    """A request body for an SDK operation from REST-shaped JSON (the spec examples' shape)."""
    return io.BytesIO(json.dumps(doc).encode())


class Clients:
    """Clients made on demand under a lock (pipelines are thread-safe once built)."""

    def __init__(self, cfg: Azure, connect_timeout: float = 5.0, retries: int = 3,
                 transport: Any = None, read_timeout: float = 30.0) -> None:
        """``transport``: an azure-core transport for every client (replays of recorded answers)."""
        self.cfg = cfg
        self.arm = cfg.endpoint or ARM
        self._lock = threading.Lock()
        self._kw: dict[str, Any] = {"connection_timeout": connect_timeout, "read_timeout": read_timeout,
                                    "retry_total": retries, "retry_backoff_factor": 0.2}
        if cfg.ca_file:
            self._kw["connection_verify"] = str(cfg.ca_file)
        if transport is not None:
            self._kw["transport"] = transport
        if cfg.credential == "lab-static":
            self.credential: Any = StaticTokenCredential(token_file=cfg.token_file)
        else:
            from azure.identity import DefaultAzureCredential

            extra = {"authority": cfg.authority} if cfg.authority else {}
            self.credential = DefaultAzureCredential(**extra)
        scope = f"{self.arm}/.default" if cfg.endpoint else f"{ARM}/.default"
        self._mgmt_kw = {**self._kw, "base_url": self.arm, "credential_scopes": [scope]}

    def _mgmt(self, cls: type) -> Any:
        return cls(self.credential, self.cfg.subscription_id, **self._mgmt_kw)

    @functools.cached_property
    def pg(self) -> Any:
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

        return self._mgmt(PostgreSQLManagementClient)

    @functools.cached_property
    def network(self) -> Any:
        from azure.mgmt.network import NetworkManagementClient

        return self._mgmt(NetworkManagementClient)

    @functools.cached_property
    def monitor(self) -> Any:
        from azure.mgmt.monitor import MonitorManagementClient

        return self._mgmt(MonitorManagementClient)

    @functools.cached_property
    def keyvault(self) -> Any:
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return self._mgmt(KeyVaultManagementClient)

    @functools.cached_property
    def storage(self) -> Any:
        from azure.mgmt.storage import StorageManagementClient

        return self._mgmt(StorageManagementClient)

    @functools.cached_property
    def resources(self) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._mgmt(ResourceManagementClient)

    def vault_url(self) -> str:
        c = self.cfg
        return (c.key_vault_url or f"https://{c.key_vault}.vault.azure.net").rstrip("/")

    @functools.cached_property
    def keys(self) -> Any:
        from azure.keyvault.keys import KeyClient

        return KeyClient(self.vault_url(), self.credential, verify_challenge_resource=not self.cfg.endpoint,
                         **self._kw)

    @functools.cached_property
    def secrets(self) -> Any:
        from azure.keyvault.secrets import SecretClient

        return SecretClient(self.vault_url(), self.credential,
                            verify_challenge_resource=not self.cfg.endpoint, **self._kw)

    @functools.cached_property
    def blob(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        c = self.cfg
        url = c.blob_endpoint or f"https://{c.backup_storage_account}.blob.core.windows.net"
        cred: Any = self.credential
        if c.credential == "lab-static":  # Azurite authenticates with its shared key
            cred = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        return BlobServiceClient(url, credential=cred, **self._kw)

    def get(self, client: Any, path: str, api_version: str) -> dict[str, Any]:
        """A GET through ``client``'s own pipeline (auth, retries) for an API with no pinned SDK."""
        from azure.core.exceptions import HttpResponseError, map_error
        from azure.core.rest import HttpRequest

        sep = "&" if "?" in path else "?"
        resp = client.send_request(HttpRequest("GET", f"{self.arm}{path}{sep}api-version={api_version}"))
        if resp.status_code >= 400:
            from azure.core.exceptions import ResourceNotFoundError

            map_error(resp.status_code, resp, {404: ResourceNotFoundError})
            raise HttpResponseError(response=resp)
        body: dict[str, Any] = resp.json()
        return body


def server_id(cfg: Azure) -> str:
    return (f"/subscriptions/{cfg.subscription_id}/resourceGroups/{cfg.resource_group}/providers/"
            f"Microsoft.DBforPostgreSQL/flexibleServers/{cfg.server_name}")
