"""AUTH-1..AUTH-5, AUTHZ-1: auth method, managed secret, password strength, no credentials in
code, admin name, least privilege; each control with its checks per layer."""

from __future__ import annotations

from typing import Any

from pgproof.catalogue import seen
from pgproof.catalogue.build import PASSWORDS, aws, azure, check, control
from pgproof.catalogue.runner import resolve


def least_privilege(pg_facts: Any, target: Any) -> list[str]:
    """The configured application role has no elevated attribute."""
    app_role = target.require_postgres("AUTHZ-1").app_role
    return resolve("pgproof.checks.postgres:judge_authz1")(pg_facts, app_role)  # type: ignore[no-any-return]


CONTROLS = (
    control(
        "AUTH-1", "Strong auth method",
        "password_encryption = scram-sha-256 and no trust, md5 or password pg_hba rule.",
        "Set password_encryption = scram-sha-256, reset passwords, and use scram-sha-256 in every "
        "pg_hba rule.", severity="high", hipaa=PASSWORDS, cis=("5.4",),
        checks=(check("sql", "postgres:judge_auth1", "pg_facts", settings="password_encryption",
                      evidence=lambda pg: f"password_encryption="
                                          f"{pg.settings.get('password_encryption')}; hba methods: "
                                          f"{sorted({r.auth_method for r in pg.hba_rules or []})}"),)),
    control(
        "AUTH-2", "Managed, rotated secret",
        "The master secret lives in Secrets Manager with rotation on, at most every threshold "
        "days.",
        "Manage the master password in Secrets Manager and enable rotation within the interval.",
        severity="medium", thresholds="secret_rotation_max_days", hipaa=PASSWORDS,
        fsbp=("SecretsManager.1", "SecretsManager.4"),
        checks=(aws("aws:judge_auth2", seen.rotation),
                azure("azure:judge_auth2", seen=lambda inv: f"secret {inv.secret_name}: expires "
                                                            f"{(inv.secret or {}).get('expires_on')}"))),
    control(
        "AUTH-3", "Strong password",
        "Where the secret may be read, the password is at least the threshold length.",
        "Rotate to a generated password of at least the minimum length.",
        severity="high", thresholds="min_password_length", hipaa=PASSWORDS, cis=("5.6",),
        checks=(aws("aws:judge_auth3", lambda i: f"secret {i.secret_id}: password length "
                                                 f"{i.secret_password_length}"),)),
    control(
        "AUTH-4", "No credentials in code",
        "The configured source tree holds no DSN with a password and no password literal.",
        "Remove the literals, rotate the exposed credentials, and read secrets from the "
        "environment or Secrets Manager.", severity="high", hipaa=PASSWORDS,
        checks=(check("source", "live:judge_auth4", "source_findings", shows="target",
                      evidence=lambda _f, t: f"scanned {t.source_tree}: no literals"),)),
    control(
        "AUTH-5", "Not the default admin",
        "The master username is not a default name (postgres, admin, ...).",
        "Create the instance with a custom master username (it cannot be renamed in place: "
        "restore into a new instance).", severity="medium", thresholds="forbidden_admin_names",
        hipaa=("164.312(a)(1)",), fsbp=("RDS.25",),
        checks=(aws("aws:judge_auth5", lambda i: seen.each(i, "MasterUsername")),
                azure("azure:judge_auth5", props=("administratorLogin",)))),
    control(
        "AUTHZ-1", "Least privilege",
        "The application role is not superuser and has no CREATEROLE, CREATEDB or BYPASSRLS.",
        "ALTER ROLE <app> NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS; grant only what the "
        "app needs.", severity="medium", hipaa=("164.312(a)(1)", "164.308(a)(4)(i)"), cis=("4.3",),
        checks=(check("sql", least_privilege, "pg_facts", "target",
                      evidence=lambda _pg, t: f"role {t.require_postgres('AUTHZ-1').app_role}: "
                                              "no elevated attributes"),)),
)
