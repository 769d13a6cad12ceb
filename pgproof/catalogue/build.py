"""The words a control module is written in: ``control(...)`` and one builder per kind of check.

A control module (``pgproof/catalogue/tls.py``, ``net.py``, ...) states each control's
definition and its checks together; the builders keep that to a few lines per layer.
Judges are named ``"module:function"`` (imported when a check first runs), so reading the
catalogue never imports a probe or a cloud SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pgproof.catalogue.model import (
    ApiFields,
    Applies,
    Check,
    Control,
    Kind,
    Platform,
    Ref,
    Severity,
)
from pgproof.catalogue.runner import resolve

# HIPAA Security Rule citations shared by several controls.
TRANSMISSION = ("164.312(e)(1)", "164.312(e)(2)(ii)")
NETWORK = ("164.312(a)(1)", "164.312(e)(1)")
PASSWORDS = ("164.312(d)", "164.308(a)(5)(ii)(D)")
BACKUP = ("164.308(a)(7)(ii)(A)",)
RESILIENCE = ("164.308(a)(7)(i)", "164.308(a)(7)(ii)(B)", "164.308(a)(7)(ii)(D)")


def control(cid: str, title: str, requirement: str, remediation: str, *, severity: Severity,
            checks: tuple[Check, ...] = (), layers: str = "", thresholds: str = "",
            kind: Kind = "compliance", unmapped_reason: str = "",
            platforms: dict[Platform, Applies] | None = None,
            **frameworks: tuple[str, ...]) -> Control:
    """A compliance control's layers are those its checks read, in the order listed;
    a game-day control (proven by a scenario) names its layers. ``platforms`` says where it
    is inherited from the provider or not applicable (``inherited(...)``, ``not_applicable(...)``)."""
    found = tuple(dict.fromkeys(layer for c in checks for layer in c.layers))
    return Control(cid, title, requirement, kind, tuple(layers.split()) or found, remediation,
                   tuple(thresholds.split()), dict(frameworks), unmapped_reason, severity, checks,
                   dict(platforms or {}))


def inherited(why: str) -> Applies:
    """The provider manages it and says the customer cannot change it: ``why`` quotes where."""
    return Applies("inherited", why)


def not_applicable(why: str) -> Applies:
    """The recommendation does not exist on that platform (``why``)."""
    return Applies("n/a", why)


def check(layer: str, judge: Ref, *inputs: str, evidence: Ref | None = None,
          settings: str = "", per_endpoint: bool = False, shows: str = "") -> Check:
    """A judge called with ``inputs`` (fixture names, ``target``, ``thresholds``) in order;
    ``per_endpoint``: the first input maps endpoint -> facts and each endpoint is judged;
    the evidence gets the same inputs, then ``shows`` (inputs the judge does not need)."""
    return Check(layer, _ref(judge), inputs, _ref(evidence) if evidence else None,
                 tuple(settings.split()), per_endpoint, tuple(shows.split()))


def aws(judge: Ref, seen: Callable[[Any], str] | None = None) -> Check:
    """An AWS-API judge ``judge(inventory, thresholds)``: ``"aws:judge_x"`` names
    ``pgproof.checks.aws:judge_x``, or pass the function (with its ``@reads``); ``seen(inventory)``."""
    return Check("aws", _cloud_judge(judge), ("aws_inventory", "thresholds"),
                 _first(seen) if seen else None)


def _cloud_judge(judge: Ref) -> Ref:
    return f"pgproof.checks.{judge}" if isinstance(judge, str) else judge


def azure(judge: Ref, *, params: tuple[str, ...] = (), props: tuple[str, ...] = (),
          seen: Callable[[Any], str] | None = None) -> Check:
    """An Azure-API judge; the evidence names the server parameters or properties it read."""
    def evidence(inv: Any, _th: Any) -> str:
        name = inv.server.get("name", "?")
        if params:
            return f"{name}: " + ", ".join(f"{p}={inv.parameters.get(p)}" for p in params)
        if props:
            return f"{name}: " + ", ".join(f"{p}={inv.props.get(p)}" for p in props)
        return f"{name}: {seen(inv) if seen else ''}"
    return Check("azure", _cloud_judge(judge), ("azure_inventory", "thresholds"), evidence)


Judge = TypeVar("Judge", bound=Callable[..., Any])
API_FIELDS = "api_fields"  # the attribute ``@reads`` sets on a judge


def reads(calls: str, fields: str, absent: str) -> Callable[[Judge], Judge]:
    """Declare what a cloud judge reads, on the judge itself: ``@reads("DescribeDBInstances",
    "`PubliclyAccessible`", "absent: cannot verify")``. docs/controls.md's API-fields tables
    are generated from these, so a new cloud control's row lives in the judge's own module."""
    def mark(judge: Judge) -> Judge:
        setattr(judge, API_FIELDS, ApiFields(calls, fields, absent))
        return judge
    return mark


def api_fields(judge: Callable[..., Any]) -> ApiFields | None:
    """The judge's ``@reads`` declaration (None: it has none)."""
    found = getattr(judge, API_FIELDS, None)
    return found if isinstance(found, ApiFields) else None


def _ref(ref: Ref) -> Ref:
    """``"tls:judge_tls1"`` is short for ``"pgproof.checks.tls:judge_tls1"``."""
    if isinstance(ref, str) and not ref.startswith("pgproof."):
        return f"pgproof.checks.{ref}"
    return ref


def _first(seen: Callable[[Any], str]) -> Callable[..., str]:
    return lambda inv, _th: seen(inv)


def lazy(ref: str, *args: Any) -> Callable[[Any], str]:
    """Evidence from a helper that lives beside the judges: ``lazy("aws_util:settings", name)``."""
    def call(inv: Any) -> str:
        return str(resolve(_ref(ref))(inv, *args))
    return call
