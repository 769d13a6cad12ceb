"""bench/fleet: `pgproof check` over a 200-instance, 3-region moto fleet vs Prowler or boto3.

Starts its own moto_server (stopped by its PID), provisions the fleet, then times:
  1. pgproof check --target fleet (AWS-layer controls: the ones Prowler's rds service covers),
  2. prowler aws --service rds on the same endpoint (if a prowler executable is given/found),
  3. a sequential boto3 baseline: the same per-database describe pass, one database at a time.
Prints one JSON line per number. Loopback only; bounded by --timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pgproof.procs import free_ports, port_open, wait_until  # noqa: E402

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": "us-east-1"}


def aws_controls() -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "pgproof"), "controls", "--kind",
                          "compliance", "--format", "json"], capture_output=True, text=True,
                         check=True).stdout
    return ",".join(c["id"] for c in json.loads(out)["controls"] if "aws" in c["layers"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--regions", default="us-east-1,eu-west-1,ap-southeast-2")
    ap.add_argument("--instances", type=int, default=200, help="total, split over the regions")
    ap.add_argument("--prowler", default=shutil.which("prowler"), help="prowler executable")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    regions = args.regions.split(",")
    os.environ.update(CREDS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    port = free_ports(1)[0]
    log = (work / "moto.log").open("wb")
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "moto_server", f"port {port}",
                   log=work / "moto.log", pid=moto.pid)
        from pgproof.lab.aws_fleet_twin import provision_fleet

        t0 = time.monotonic()
        per = -(-args.instances // len(regions))
        fleet = provision_fleet(url, regions, per, bad_every=5)
        n = len(fleet.good) + len(fleet.bad)
        print(json.dumps({"what": "provision", "instances": n, "regions": len(regions),
                          "s": round(time.monotonic() - t0, 1)}), flush=True)
        cfg = work / "pgproof.toml"
        cfg.write_text(f"""[targets.fleet.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = 1 }}
[targets.fleet.aws]
region = "{regions[0]}"
regions = {json.dumps(regions)}
endpoint_url = "{url}"
db_instance_id = "*"
""")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PGPROOF_")}, **CREDS}
        t0 = time.monotonic()
        r = subprocess.run([str(Path(sys.executable).parent / "pgproof"), "check", "--target", "fleet",
                            "--config", str(cfg), "--reports", str(work / "reports"),
                            "--control", aws_controls()], capture_output=True, text=True,
                           timeout=args.timeout, env=env, cwd=work)
        pg_s = time.monotonic() - t0
        doc = json.loads(((work / "reports" / "latest-check").resolve() / "results.json").read_text())
        rows = doc["fleet"]["matrix"]
        print(json.dumps({"what": "pgproof check", "s": round(pg_s, 1), "exit": r.returncode,
                          "databases": len(rows), "worst": rows[0]["database"],
                          "failing_dbs": sum(r_["worst"] == "fail" for r_ in rows)}), flush=True)
        base_s = sequential_baseline(url, [k for k in fleet.good + fleet.bad])
        print(json.dumps({"what": "sequential boto3 baseline", "s": round(base_s, 1),
                          "ratio_vs_pgproof": round(base_s / pg_s, 2)}), flush=True)
        if args.prowler:
            t0 = time.monotonic()
            pr = subprocess.run([args.prowler, "aws", "--service", "rds", "-f", *regions,
                                 "--output-directory", str(work / "prowler"), "-M", "json-ocsf",
                                 "--no-banner"], capture_output=True, text=True, timeout=args.timeout,
                                env={**env, "AWS_ENDPOINT_URL": url}, cwd=work)
            pr_s = time.monotonic() - t0
            (work / "prowler.log").write_text(pr.stdout + pr.stderr)
            print(json.dumps({"what": "prowler aws --service rds", "s": round(pr_s, 1),
                              "exit": pr.returncode, "log": str(work / "prowler.log"),
                              "ratio_prowler_over_pgproof": round(pr_s / pg_s, 2)}), flush=True)
        return 0
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:  # a loaded moto_server may ignore SIGTERM for a while
            moto.kill()
            moto.wait(10)
        log.close()


def sequential_baseline(url: str, keys: list[str]) -> float:
    """The same inventory, one database after another, one thread per database."""
    from pgproof.probes.aws import AwsProbe
    from pgproof.target import Aws

    t0 = time.monotonic()
    for key in keys:
        region, db = key.split("/", 1)
        AwsProbe(Aws(region=region, endpoint_url=url, db_instance_id=db), workers=1).gather()
    return time.monotonic() - t0


if __name__ == "__main__":
    sys.exit(main())
