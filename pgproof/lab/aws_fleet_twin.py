"""A fleet on the AWS twin: the compliant deployment per region plus many more instances.

Why: fleet checks (``probes.aws_fleet``) need an account with many databases in
several regions, some of them broken in a known way, to prove the matrix names
the right database and to benchmark discovery against other tools. Each extra
instance reuses its region's network, parameter group and key; every
``bad_every``-th one is publicly accessible and unencrypted (NET-1, ENC-1 fail).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pgproof.lab import aws_twin
from pgproof.lab.aws_spec import primary_kwargs


@dataclass
class FleetTwin:
    regions: list[str]
    endpoint_url: str
    good: list[str] = field(default_factory=list)  # "region/id"
    bad: list[str] = field(default_factory=list)
    other_team: list[str] = field(default_factory=list)  # tagged team=other: a filter drops them


def provision_fleet(endpoint_url: str, regions: list[str], per_region: int, *, bad_every: int = 5,
                    other_every: int = 0, workers: int = 8) -> FleetTwin:
    """``per_region`` primaries per region (the twin's own primary among them), tagged team=pay."""
    fleet = FleetTwin(regions=list(regions), endpoint_url=endpoint_url)

    def region(r: str) -> list[tuple[str, str]]:
        twin = aws_twin.provision(region=r, name=f"fleet-{r}", endpoint_url=endpoint_url,
                                  with_proxy=False)
        c = aws_twin.connect(r, None, endpoint_url)
        c.rds.add_tags_to_resource(ResourceName=_arn(c.rds, twin.db_instance_id),
                                   Tags=[{"Key": "team", "Value": "pay"}])
        made = [(f"{r}/{twin.db_instance_id}", "good")]

        def one(i: int) -> tuple[str, str]:
            kind = "bad" if bad_every and i % bad_every == 0 else "good"
            if other_every and i % other_every == 1:
                kind = "other_team"
            db = f"fleet-{r}-{i:03d}"
            kw: dict[str, Any] = primary_kwargs(
                twin, DBInstanceIdentifier=db, MultiAZ=False,
                Tags=[{"Key": "team", "Value": "other" if kind == "other_team" else "pay"}])
            if kind == "bad":
                kw.update(PubliclyAccessible=True, StorageEncrypted=False)
                kw.pop("KmsKeyId")
            c.rds.create_db_instance(**kw)
            return f"{r}/{db}", kind

        with ThreadPoolExecutor(max_workers=workers) as pool:
            made += list(pool.map(one, range(1, per_region)))
        return made

    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        for made in pool.map(region, regions):
            for key, kind in made:
                getattr(fleet, kind).append(key)
    return fleet


def _arn(rds: Any, db: str) -> str:
    arn: str = rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["DBInstanceArn"]
    return arn
