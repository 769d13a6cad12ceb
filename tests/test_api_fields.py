"""Each AWS and Azure judge declares (``@reads`` beside it) every API field and inventory key it reads.

The keys are read from the judges' own code (subscripts, ``.get``, ``in`` tests,
literal tuples a judge loops over, parameter names passed to the parameter
helpers), following the ``pgproof.checks`` helpers each judge calls. A judge
that starts reading a field its declaration does not name fails here, so the
tables generated from the declarations (docs/controls.md) cannot go stale
silently. What a judge concludes when a field is absent is the declaration's
prose, checked by tests/test_recorded.py on recorded real shapes.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pgproof.catalogue.build import api_fields, reads
from pgproof.catalogue.registry import judges
from pgproof.catalogue.render import API_FIELDS_HEADING

DOC = Path(__file__).resolve().parents[1] / "docs" / "api-fields.md"
KEY = re.compile(r"^[A-Za-z_][\w.]*$")


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _loop_keys(it: ast.AST) -> set[str]:
    """Literal names a loop walks: ``for k in ("a", "b")`` or ``for name, ok in [("a", ...)]``."""
    out: set[str] = set()
    if isinstance(it, ast.Tuple | ast.List | ast.Set):
        for el in it.elts:
            first = el.elts[0] if isinstance(el, ast.Tuple) and el.elts else el
            if (s := _str(first)) is not None:
                out.add(s)
    return out


def judge_keys(fn: Callable[..., Any], seen: set[Any] | None = None) -> set[str]:
    """Every key literal ``fn`` reads, with the pgproof.checks helpers it calls."""
    seen = set() if seen is None else seen
    if fn in seen:
        return set()
    seen.add(fn)
    out: set[str] = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
        if isinstance(node, ast.Subscript):  # rec["Key"]
            out.add(_str(node.slice) or "")
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn)
                                                   for op in node.ops):  # "Key" in rec
            out.add(_str(node.left) or "")
        elif isinstance(node, ast.For | ast.comprehension):
            out |= _loop_keys(node.iter)
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "get" and node.args and (
                    s := _str(node.args[0])) is not None:
                out.add(s)
            name = f.id if isinstance(f, ast.Name) else None
            if name in ("param", "param_problems") and len(node.args) > 1 and (
                    s := _str(node.args[1])) is not None:
                out.add(s)
            target = fn.__globals__.get(name) if name else None
            if inspect.isfunction(target) and target.__module__.startswith("pgproof.checks"):
                out |= judge_keys(target, seen)
    return {k for k in out if KEY.match(k)}


def undeclared(judges: dict[str, Callable[..., Any]]) -> dict[str, list[str]]:
    """Control ID -> what its judge reads that its ``@reads`` does not name (``*``: no ``@reads``)."""
    out: dict[str, list[str]] = {}
    for cid, j in judges.items():
        declared = api_fields(j)
        if declared is None:
            out[cid] = ["* (no @reads declaration on the judge)"]
            continue
        missing = sorted(k for k in judge_keys(j) if f"`{k}`" not in declared.fields)
        if missing:
            out[cid] = missing
    return out


@pytest.mark.parametrize("layer", ["aws", "azure"])
def test_each_cloud_judge_declares_every_field_it_reads(layer: str) -> None:
    missing = undeclared(judges(layer))
    assert not missing, f"{layer} judges read fields their @reads does not name: {missing}"


def test_a_judge_reading_an_undeclared_field_is_caught() -> None:
    """The check can fail: a judge with no declaration, and one that reads a key it omits."""
    def bare(inv: Any, th: Any) -> list[str]:
        return [] if inv["PubliclyAccessible"] else ["x"]

    @reads("DescribeDBInstances", "`DBInstanceIdentifier`", "absent: cannot verify")
    def partial(inv: Any, th: Any) -> list[str]:
        return [] if inv.get("PubliclyAccessible") else [inv["DBInstanceIdentifier"]]

    assert undeclared({"ZZ-8": bare, "ZZ-9": partial}) == {
        "ZZ-8": ["* (no @reads declaration on the judge)"], "ZZ-9": ["PubliclyAccessible"]}


def test_the_page_is_linked_from_the_readme_and_points_at_the_generated_tables() -> None:
    assert "docs/api-fields.md" in (DOC.parents[1] / "README.md").read_text()
    assert f"## {API_FIELDS_HEADING}" in (DOC.parent / "controls.md").read_text()
    assert "controls.md#" + API_FIELDS_HEADING.lower().replace(" ", "-") in DOC.read_text()
