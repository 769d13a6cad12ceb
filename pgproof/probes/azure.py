"""One read-only pass over an Azure flexible server -> ``AzureInventory`` (REST-shaped facts).

Like the AWS pass: the server is read first (everything hangs off it), then
every fact family runs concurrently. Records are kept in the REST shape
(camelCase, as in the API specs), so an absent field stays absent.
Verdict rules: a wrong subscription, resource group, server or missing
credentials stops the pass (``Unreachable``: every Azure layer is error); a
refusal on one resource type (403) is recorded in ``denied[family]`` and only
the layers reading that family are error; an API the endpoint does not offer
(404 on a collection, 501) is ``missing`` and judged cannot-verify.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pgproof import pools
from pgproof.probes.azure_inventory import AzureInventory as AzureInventory  # re-exported
from pgproof.probes.azure_inventory import raw as raw  # re-exported
from pgproof.target import Azure
from pgproof.verdict import Unreachable

if TYPE_CHECKING:
    from pgproof.probes.azure_sdk import Clients

# The Azure SDK (azure-core, ~0.1 s to import) is imported by the functions that call it, not
# here: every suite imports AzureInventory, and a target without [azure] never needs the SDK.

Task = Callable[[], None]


def _why(exc: Exception) -> str:
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError) and exc.status_code is not None:  # else: a credential's own
        code = getattr(getattr(exc, "error", None), "code", None) or exc.status_code
        msg = getattr(getattr(exc, "error", None), "message", None) or exc.reason or ""
        return f"{code} ({str(msg)[:200]})"
    return str(exc).splitlines()[0][:200]


class AzureProbe:
    def __init__(self, cfg: Azure, *, connect_timeout: float = 5.0, workers: int = 8,
                 clients: Clients | None = None, read_timeout: float = 30.0,
                 retries: int = 3) -> None:
        self.cfg = cfg
        self.workers = workers
        if clients is None:
            from pgproof.probes.azure_sdk import Clients

            clients = Clients(cfg, connect_timeout, retries, read_timeout=read_timeout)
        self.clients = clients

    def gather(self) -> AzureInventory:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        from pgproof.probes import azure_calls as calls
        from pgproof.probes.azure_sdk import server_id

        c, cfg = self.clients, self.cfg
        inv = AzureInventory(endpoint=c.arm, server_id=server_id(cfg),
                             app_subnet_id=cfg.app_subnet_id, secret_name=cfg.admin_secret_name,
                             storage_account_name=cfg.backup_storage_account,
                             container_name=cfg.backup_container)
        where = f"Azure endpoint {c.arm} (subscription {cfg.subscription_id})"
        try:
            inv.server = raw(c.pg.servers.get(cfg.resource_group, cfg.server_name))
        except ClientAuthenticationError as exc:
            raise Unreachable(f"{where}: no usable Azure credentials for Servers_Get of "
                              f"{cfg.server_name} ({_why(exc)}).") from None
        except ResourceNotFoundError as exc:
            code = getattr(getattr(exc, "error", None), "code", "")
            what = {"SubscriptionNotFound": f"subscription {cfg.subscription_id} does not exist "
                                            "or is not visible to these credentials",
                    "ResourceGroupNotFound": f"resource group {cfg.resource_group} does not exist "
                                             f"in subscription {cfg.subscription_id}"}.get(
                code, f"flexible server {cfg.server_name} does not exist in resource group "
                      f"{cfg.resource_group}")
            raise Unreachable(f"{where}: {what}.") from None
        except HttpResponseError as exc:
            raise Unreachable(f"{where} refused Servers_Get of {cfg.server_name}: {_why(exc)}.") from None
        except ServiceRequestError as exc:
            raise Unreachable(f"{where} could not be reached for Servers_Get: {_why(exc)}.") from None
        with pools.threads(self.workers) as pool:
            futures = [pool.submit(_guard, inv, fam, task) for fam, task in calls.tasks(c, inv)]
            for fut in futures:
                fut.result()
        return inv


def _guard(inv: AzureInventory, family: str, task: Task) -> None:
    """One fact family: a refusal is recorded for the layers that read it, not raised."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    try:
        task()
    except ClientAuthenticationError as exc:
        inv.denied[family] = f"credentials refused ({_why(exc)})"
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            inv.denied[family] = f"no read permission: {_why(exc)}"
        elif exc.status_code in (404, 405, 501):
            inv.missing[family] = f"not available from this endpoint: {_why(exc)}"
        else:
            inv.denied[family] = f"HTTP {exc.status_code}: {_why(exc)}"
    except ServiceRequestError as exc:
        inv.denied[family] = f"no route: {_why(exc)}"


def gather(cfg: Azure, *, connect_timeout: float = 5.0, workers: int = 8,
           read_timeout: float = 30.0, retries: int = 3) -> AzureInventory:
    """One inventory pass over the flexible server named by ``cfg``."""
    return AzureProbe(cfg, connect_timeout=connect_timeout, workers=workers,
                      read_timeout=read_timeout, retries=retries).gather()
