"""What is left in place on a lab: Toxiproxy toxics and disabled proxies, and fault records.

``pgproof lab status`` shows these so a fault left by a killed game day is never silent.
"""

from __future__ import annotations

from pathlib import Path

from pgproof.faults import toxiproxy
from pgproof.faults.record import FaultRecord
from pgproof.lab.state import LabState


def fault_notices(state_dir: Path) -> list[str]:
    """One line per fault record of any target that lives in this lab's state directory."""
    out = []
    for path in sorted((state_dir / "faults").glob("*.json")):
        rec = FaultRecord.load_path(path)
        if rec is not None:
            out.append(rec.notice())
    return out


def in_place(state: LabState) -> list[str]:
    """Toxics and disabled proxies now on the lab's Toxiproxy, then recorded faults."""
    try:
        found = toxiproxy.active_faults(state.toxiproxy_url) if state.toxiproxy_url else []
    except toxiproxy.ToxiproxyError as exc:
        found = [f"toxiproxy not answering ({exc})"]
    return found + fault_notices(state.state_dir)
