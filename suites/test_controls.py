"""Every compliance control, one item per control and layer: ``test_control[TLS-1-tls]``.

The items come from the catalogue: each control's definition and its judges per layer live
together in its family's module (``pgproof/catalogue/tls.py``, ``net.py``, ...).
``pgproof controls show TLS-1`` prints a control's judges and items; ``pytest suites
--control TLS-1`` (or ``-k TLS-1``, ``-m TLS-1``) runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pgproof.catalogue.runner import Unit
from pgproof.pytest_units import run_unit


def test_control(control_unit: Unit, control_inputs: dict[str, Any],
                 evidence: Callable[[str], None]) -> None:
    run_unit(control_unit, control_inputs, evidence)
