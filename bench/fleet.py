"""bench/fleet: `pgproof check` over a 200-instance, 3-region moto fleet vs Prowler or boto3.

Starts its own moto_server (stopped by its PID), provisions the fleet once, then times --runs
rounds, each of (order flipped every round, so a shared machine's load hits both alike):
  1. pgproof check --target fleet (AWS-layer controls: the ones Prowler's rds service covers),
     with bench/pytest_phase_timer.py saying where its time went (collection, probes, check
     bodies, pytest's per-item protocol, report writing),
  2. prowler aws --service rds on the same endpoint (bench/setup_prowler.sh installs it),
and with --baseline a sequential boto3 pass: the same per-database describes, one at a time.
Prints one JSON line per number, then the medians and the median of the paired ratios.
Loopback only; bounded by --timeout. Usage: .venv/bin/python bench/fleet.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pgproof.procs import free_ports, port_open, wait_until  # noqa: E402

DEFAULT_PROWLER = "/opt/pgproof/prowler-5.46.0/bin/prowler"  # bench/setup_prowler.sh
# Set in some shells and CI sessions, not in a user's: no .pyc cache (every import compiles) and
# a write(2) per print. Both tools run without them, as installed tools normally do.
SESSION_ONLY = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
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
    ap.add_argument("--prowler", default=shutil.which("prowler") or DEFAULT_PROWLER,
                    help="prowler executable ('' to skip Prowler)")
    ap.add_argument("--runs", type=int, default=3, help="timed rounds")
    ap.add_argument("--profile", type=Path, help="first run pgproof once under cProfile into this file")
    ap.add_argument("--baseline", action="store_true", help="also time the sequential boto3 pass")
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
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith("PGPROOF_") and k not in SESSION_ONLY}, **CREDS}
        pg_cmd = [str(Path(sys.executable).parent / "pgproof"), "check", "--target", "fleet",
                  "--config", str(cfg), "--reports", str(work / "reports"), "--control", aws_controls(),
                  "--", "-p", "pytest_phase_timer"]
        pg_env = {**env, "PYTHONPATH": str(REPO / "bench"), "PGPROOF_BENCH_PHASES": str(work / "phases.json")}
        pr_cmd = [args.prowler, "aws", "--service", "rds", "-f", *regions, "--output-directory",
                  str(work / "prowler"), "-M", "json-ocsf", "--no-banner"]
        pr_env = {**env, "AWS_ENDPOINT_URL": url}
        print(json.dumps({"pgproof_cmd": " ".join(pg_cmd),
                          "prowler_cmd": f"AWS_ENDPOINT_URL={url} " + " ".join(pr_cmd)}), flush=True)
        if args.profile:  # python -m cProfile ... -m pgproof.cli check (same arguments)
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "cProfile", "-o", str(args.profile.resolve()), "-m",
                            "pgproof.cli", *pg_cmd[1:]], capture_output=True, timeout=args.timeout,
                           env=pg_env, cwd=work, check=False)
            print(json.dumps({"what": "pgproof check under cProfile", "s": round(time.monotonic() - t0, 1),
                              "profile": str(args.profile), "phases": json.loads(
                                  (work / "phases.json").read_text())}), flush=True)
        runs: dict[str, list[float]] = {"pgproof": [], "prowler": []}
        for i in range(args.runs):
            order = ["pgproof", "prowler"] if i % 2 == 0 else ["prowler", "pgproof"]
            for name in order:
                if name == "prowler" and not args.prowler:
                    continue
                load = os.getloadavg()[0]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.monotonic()
                cmd, e = (pg_cmd, pg_env) if name == "pgproof" else (pr_cmd, pr_env)
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=e,
                                   cwd=work)
                s = time.monotonic() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                runs[name].append(s)
                line: dict[str, object] = {"round": i + 1, "what": name, "s": round(s, 1),
                                           "cpu_s": round(cpu, 1), "exit": r.returncode,
                                           "load1": round(load, 1)}
                if name == "pgproof":
                    doc = json.loads(((work / "reports" / "latest-check").resolve()
                                      / "results.json").read_text())
                    rows = doc["fleet"]["matrix"]
                    line |= {"databases": len(rows), "worst": rows[0]["database"],
                             "failing_dbs": sum(r_["worst"] == "fail" for r_ in rows),
                             "phases": json.loads((work / "phases.json").read_text())}
                else:
                    (work / "prowler.log").write_text(r.stdout + r.stderr)
                    line["log"] = str(work / "prowler.log")
                print(json.dumps(line), flush=True)
        pg_s = statistics.median(runs["pgproof"])
        summary: dict[str, object] = {"pgproof_median_s": round(pg_s, 1), "rounds": args.runs}
        if runs["prowler"]:
            ratios = [p / g for g, p in zip(runs["pgproof"], runs["prowler"], strict=True)]
            summary |= {"prowler_median_s": round(statistics.median(runs["prowler"]), 1),
                        "median_paired_ratio": round(statistics.median(ratios), 2),
                        "paired_ratio_range": [round(min(ratios), 2), round(max(ratios), 2)]}
        print(json.dumps(summary), flush=True)
        if args.baseline:
            base_s = sequential_baseline(url, [k for k in fleet.good + fleet.bad])
            print(json.dumps({"what": "sequential boto3 baseline", "s": round(base_s, 1),
                              "ratio_vs_pgproof": round(base_s / pg_s, 2)}), flush=True)
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
