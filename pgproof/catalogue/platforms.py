"""Where a control applies: per platform, checked (by which layers), inherited, or not applicable.

Said, never guessed. A control's ``platforms`` (catalogue/model.py) holds its exceptions, each
with the provider's words and where they are (``inherited``) or why the recommendation does not
exist there (``n/a``). Everywhere else it is checked by those of its layers that exist on the
platform, and which layers exist where is this module's table (``LAYERS_ON``), each absence
with its reason. A control none of whose layers exists on a platform, and that states no
exception there, is listed "n/a" with that reason: nothing of that platform can look at it.
At run time only the stated exceptions change a verdict (``pytest_units``); a layer a target
configures is judged whatever its platform (the lab's AWS twin beside a self-managed cluster).

A target's platform is stated in its file (``platform = "rds"``) or derived from what it
configures (:func:`derive`); ``pgproof controls --platform rds`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgproof.catalogue.model import PLATFORMS, Control, Platform, Status

# Sources the layer table rests on (the provider's own documentation).
RDS_NO_HOST = ("https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
               "Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html")
AURORA_NO_HOST = ("https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
                  "Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html")
AZURE_NO_HOST = ("https://learn.microsoft.com/en-us/training/modules/"
                 "secure-azure-database-for-postgresql/3-describe-built-server-roles")

_EVERYWHERE = frozenset(PLATFORMS)
_AWS = frozenset({"rds", "aurora"})
_SELF = frozenset({"self-managed"})
# Layer -> the platforms it exists on. The database's own view (sql, tls) and what sits on the
# customer's side of it (pooler, health endpoint, DNS, vantage points, source tree, the game
# days' clock/ledger/load/restore) exist everywhere; a cloud API only on its cloud; the database
# hosts and the backup tool's own repository only where the customer runs the hosts.
LAYERS_ON: dict[str, frozenset[str]] = {
    "sql": _EVERYWHERE, "tls": _EVERYWHERE, "pooler": _EVERYWHERE, "health": _EVERYWHERE,
    "dns": _EVERYWHERE, "vantage": _EVERYWHERE, "source": _EVERYWHERE, "clock": _EVERYWHERE,
    "ledger": _EVERYWHERE, "load": _EVERYWHERE, "cluster": _EVERYWHERE,
    "split-brain": _EVERYWHERE, "restore": _EVERYWHERE,
    "aws": _AWS, "sns-delivery": _AWS,
    "azure": frozenset({"azure"}),
    "host": _SELF, "backup": _SELF,
}
# Why a layer is absent from a platform, for the table and the n/a reasons.
ABSENT: dict[tuple[str, str], str] = {
    **{("aws", p): f"{p} is not on AWS: no RDS API to ask" for p in ("azure", "self-managed")},
    **{("sns-delivery", p): f"{p} is not on AWS: no SNS topics" for p in ("azure", "self-managed")},
    **{("azure", p): f"{p} is not on Azure: no Azure API to ask" for p in ("rds", "aurora",
                                                                        "self-managed")},
    ("host", "rds"): f"RDS gives no access to the host OS ({RDS_NO_HOST})",
    ("host", "aurora"): f"Aurora gives no access to the host OS ({AURORA_NO_HOST})",
    ("host", "azure"): f"Azure runs the host; only Microsoft holds azuresu ({AZURE_NO_HOST})",
    ("backup", "rds"): f"RDS takes the backups itself; no backup tool or archive to read "
                       f"({RDS_NO_HOST})",
    ("backup", "aurora"): f"Aurora's storage layer backs up continuously; no backup tool to "
                          f"read ({AURORA_NO_HOST})",
    ("backup", "azure"): f"Azure takes the backups itself; no backup tool to read "
                         f"({AZURE_NO_HOST})",
}
assert all(ABSENT.get((layer, p)) for layer, on in LAYERS_ON.items() for p in PLATFORMS
           if p not in on), "a layer absent from a platform needs its reason in ABSENT"


@dataclass(frozen=True)
class Applicability:
    """How one control applies on one platform."""

    control: str
    platform: Platform
    status: Status
    layers: tuple[str, ...] = ()  # checked: the layers that look at it there
    why: str = ""  # inherited / n/a: the reason and its source

    def text(self) -> str:
        if self.status == "checked":
            return f"checked ({', '.join(self.layers)})"
        return f"{self.status}: {self.why}"


def applies(c: Control, platform: Platform) -> Applicability:
    """Checked by its layers that exist on ``platform``, or the exception the control states."""
    said = c.platforms.get(platform)
    if said is not None:
        return Applicability(c.id, platform, said.status, why=said.why)
    here = tuple(layer for layer in c.layers if platform in LAYERS_ON.get(layer, _EVERYWHERE))
    if here:
        return Applicability(c.id, platform, "checked", here)
    gone = "; ".join(dict.fromkeys(ABSENT.get((layer, platform), f"no {layer} layer on {platform}")
                                   for layer in c.layers))
    return Applicability(c.id, platform, "n/a",
                         why=f"none of its layers ({', '.join(c.layers)}) exists on {platform}: {gone}")


def table(controls: list[Control], platforms: tuple[Platform, ...] = PLATFORMS
          ) -> list[list[Applicability]]:
    """One row per control, one cell per platform."""
    return [[applies(c, p) for p in platforms] for c in controls]


class UnknownPlatform(ValueError):
    """A platform name that is none of PLATFORMS (phrased for the user)."""


def parse(name: str) -> Platform:
    """``"RDS"`` -> ``"rds"``; anything else than the four names raises UnknownPlatform."""
    key = name.strip().lower()
    for p in PLATFORMS:
        if key == p:
            return p
    raise UnknownPlatform(f"unknown platform {name!r}: pgproof knows {', '.join(PLATFORMS)}")


def derive(stated: Platform | None, *, db_cluster_id: str | None = None,
           db_instance_id: str | None = None, aws_fleet: bool = False,
           azure: bool = False) -> Platform:
    """A target's platform: the one its file states, else what it configures says (an AWS
    cluster -> aurora, an AWS instance or fleet -> rds, an Azure server -> azure, nothing of
    a cloud -> self-managed)."""
    if stated is not None:
        return stated
    if db_cluster_id:
        return "aurora"
    if db_instance_id or aws_fleet:
        return "rds"
    if azure:
        return "azure"
    return "self-managed"
