"""bench/check: `pgproof check --target lab` vs `prowler aws --service rds` on the lab's AWS twin.

Both run against the same moto twin (the lab's), alternated in one run (the order flips every
round, so the load of a shared machine hits both alike), after one untimed warm-up each (both
then start from compiled bytecode, as installed tools do; see SESSION_ONLY).
Prints one JSON line per run (wall s, CPU s of the process tree, 1-min load average before it)
and a summary: medians, the median of the paired ratios prowler/pgproof, and the commands.
Needs `pgproof lab up` first and a Prowler from bench/setup_prowler.sh.
Usage: .venv/bin/python bench/check.py [--runs 7] [--prowler PATH] [--lab-dir .pgproof/lab]
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
DEFAULT_PROWLER = "/opt/pgproof/prowler-5.46.0/bin/prowler"  # bench/setup_prowler.sh
# Set in some shells and CI sessions, not in a user's: no .pyc cache (every import compiles) and
# a write(2) per print. Both tools run without them, as installed tools normally do.
SESSION_ONLY = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


def timed(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user+sys of the whole process tree) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=timeout, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="timed rounds (each: one of both)")
    ap.add_argument("--prowler", default=shutil.which("prowler") or DEFAULT_PROWLER)
    ap.add_argument("--lab-dir", type=Path, default=REPO / ".pgproof" / "lab")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    lab_target = (args.lab_dir / "target.toml").resolve()
    if not lab_target.exists():
        print(f"bench/check: {lab_target} not found: run `pgproof lab up --lab-dir {args.lab_dir}` "
              "first", file=sys.stderr)
        return 2
    if not Path(args.prowler).exists():
        print(f"bench/check: no prowler at {args.prowler}: run bench/setup_prowler.sh", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from pgproof.target import load_target

    aws = load_target("lab", lab_file=lab_target).aws
    if aws is None or not aws.endpoint_url:
        print("bench/check: the lab has no AWS twin (started with --no-aws?)", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PGPROOF_", "AWS_")) and k not in SESSION_ONLY}
    env["PGPROOF_LAB_TARGET"] = str(lab_target)
    work = Path(tempfile.mkdtemp(prefix="bench-check-"))
    pgproof = [str(REPO / ".venv" / "bin" / "pgproof"), "check", "--target", "lab",
               "--reports", str(work / "reports")]
    prowler = [args.prowler, "aws", "--service", "rds", "-f", aws.region, "--output-directory",
               str(work / "prowler"), "-M", "json-ocsf", "--no-banner"]
    prowler_env = {**env, "AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_DEFAULT_REGION": aws.region,
                   "AWS_PROFILE": aws.profile or "default"}
    if aws.credentials_file:
        prowler_env["AWS_SHARED_CREDENTIALS_FILE"] = str(aws.credentials_file)
    cmds = {"pgproof": (pgproof, env), "prowler": (prowler, prowler_env)}
    for name, (cmd, e) in cmds.items():  # warm-up: bytecode compiled, caches filled, not timed
        wall, _, rc = timed(cmd, e, args.timeout)
        print(json.dumps({"warm-up": name, "s": round(wall, 2), "exit": rc}), flush=True)
    rows: dict[str, list[tuple[float, float, float]]] = {"pgproof": [], "prowler": []}
    for i in range(args.runs):
        order = ["pgproof", "prowler"] if i % 2 == 0 else ["prowler", "pgproof"]
        for name in order:
            load = os.getloadavg()[0]
            wall, cpu, rc = timed(*cmds[name], args.timeout)
            rows[name].append((wall, cpu, load))
            print(json.dumps({"round": i + 1, "what": name, "s": round(wall, 2), "cpu_s": round(cpu, 2),
                              "exit": rc, "load1": round(load, 1)}), flush=True)
    ratios = [p[0] / g[0] for g, p in zip(rows["pgproof"], rows["prowler"], strict=True)]
    cpu_ratios = [p[1] / g[1] for g, p in zip(rows["pgproof"], rows["prowler"], strict=True)]
    loads = [r[2] for rs in rows.values() for r in rs]
    summary = {
        "pgproof_median_s": round(statistics.median(r[0] for r in rows["pgproof"]), 2),
        "prowler_median_s": round(statistics.median(r[0] for r in rows["prowler"]), 2),
        "median_paired_ratio": round(statistics.median(ratios), 2),
        "paired_ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
        "pgproof_median_cpu_s": round(statistics.median(r[1] for r in rows["pgproof"]), 2),
        "prowler_median_cpu_s": round(statistics.median(r[1] for r in rows["prowler"]), 2),
        "median_paired_cpu_ratio": round(statistics.median(cpu_ratios), 2),
        "load1_range": [round(min(loads), 1), round(max(loads), 1)], "cores": os.cpu_count(),
        "rounds": args.runs, "pgproof_cmd": " ".join(pgproof),
        "prowler_cmd": "AWS_ENDPOINT_URL=<lab moto> " + " ".join(prowler),
    }
    print(json.dumps(summary), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
