"""ENC-1..ENC-4: storage, backups and the backup bucket encrypted and private, and pgcrypto at
hand in the database; each control with its checks per layer."""

from __future__ import annotations

from typing import Any

from pgproof.catalogue import seen
from pgproof.catalogue.build import BACKUP, aws, azure, check, control
from pgproof.catalogue.runner import resolve


def data_on_encrypted_device(host_facts: list[Any]) -> list[str]:
    """Every database host's data directory sits on an encrypted device, private."""
    judge = resolve("pgproof.checks.live:judge_host")
    return [p for f in host_facts for p in judge(f)]


def _dbname(target: Any) -> str:
    return str(target.postgres.dbname) if target.postgres else "postgres"


def pgcrypto_installed(priv_facts: Any, target: Any) -> list[str]:
    """ENC-4 in the target's own database."""
    return resolve("pgproof.checks.priv:judge_pgcrypto")(  # type: ignore[no-any-return]
        priv_facts, _dbname(target))


def _devices(host_facts: list[Any]) -> str:
    return "; ".join(f"{f.host}: {f.data_dir} on {' > '.join(f.data_device_types)}, mode "
                     f"{f.data_dir_mode:o}" for f in host_facts if f.data_dir_mode is not None)


CONTROLS = (
    control(
        "ENC-1", "Encrypted at rest",
        "Storage is encrypted with an enabled customer-managed KMS key with rotation on; "
        "self-managed: the data directory sits on an encrypted device.",
        "Encrypt with a customer-managed KMS key with rotation (RDS: restore an encrypted "
        "snapshot copy); self-managed: put the data directory on LUKS.",
        severity="medium", hipaa=("164.312(a)(2)(iv)",), fsbp=("RDS.3",),
        checks=(aws("aws:judge_enc1", lambda i: seen.cluster(i, "StorageEncrypted") + "; "
                    + seen.kms(i)),
                check("host", data_on_encrypted_device, "host_facts", evidence=_devices,
                      settings="data_directory ssl_key_file"),
                azure("azure:judge_enc1", props=("dataEncryption",)))),
    control(
        "ENC-2", "Encrypted, private backups",
        "Snapshots and automated backups are encrypted and no snapshot is shared with all; "
        "a backup tool's repositories are encrypted (cipher not none).",
        "Copy unencrypted snapshots with a KMS key, delete the originals, and remove the 'all' "
        "restore attribute; set repo1-cipher-type=aes-256-cbc on a new pgBackRest repository.",
        severity="medium", hipaa=("164.312(a)(2)(iv)", *BACKUP), fsbp=("RDS.1", "RDS.4"),
        checks=(aws("aws:judge_enc2",
                    lambda i: f"{len(i.snapshots)} snapshots, {len(i.cluster_snapshots)} cluster "
                              f"snapshots, {len(i.automated_backups)} automated backups "
                              "encrypted; none shared with all"),
                check("backup", "backup:judge_enc2", "backup_facts",
                      evidence=lambda b: f"{b.tool} {b.stanza}: " + ", ".join(
                          f"repo{r.get('key')} cipher {r.get('cipher')}" for r in b.repos)))),
    control(
        "ENC-3", "Backup storage locked",
        "The backup bucket has default KMS encryption, public access fully blocked, and "
        "versioning.",
        "Set default SSE-KMS encryption, all four public-access-block settings, and versioning "
        "on the bucket.", severity="medium", hipaa=("164.312(a)(2)(iv)", *BACKUP),
        fsbp=("S3.8",),
        checks=(aws("aws:judge_enc3", seen.bucket),
                azure("azure:judge_enc3", seen=lambda inv: f"account {inv.storage_account_name}, "
                                                           f"container public {inv.container_public}"))),
    control(
        "ENC-4", "pgcrypto installed",
        "The pgcrypto extension is created in the target's database, so columns can be "
        "encrypted and hashed in SQL (CIS 6.11: installed, not only available; whether the "
        "application uses it is a data-design review, not a setting).",
        "CREATE EXTENSION pgcrypto in the database (self-managed: the contrib package; RDS, "
        "Aurora: supported, created by the master user; Azure: allow-list it in the "
        "azure.extensions server parameter first).",
        severity="low", hipaa=("164.312(a)(2)(iv)",), cis=("6.11",),
        checks=(check("sql", pgcrypto_installed, "priv_facts", "target",
                      evidence=lambda f, t: f"database {_dbname(t)} has pgcrypto"),)),
)
