"""junit.xml as CI viewers and Jenkins' xUnit schema accept it: control IDs in names, target as suite.

GitHub and GitLab test viewers display a testcase's ``name`` (and the failure text)
but not its properties, so ``test_tls_versions[writer]`` becomes
``test_tls_versions[writer] [TLS-1]``. Jenkins' xUnit plugin validates against its
``junit-10.xsd``, which allows ``properties`` only on a ``testsuite``, never on a
``testcase`` (pytest writes the items' user properties there in every family). So the
testcase properties move up to the suite: one ``control`` property per control ID the
run checked, and ``<name>:<classname>::<test name>`` per testcase property (``control``,
``waiver``), so which check proved which control survives for Xray/TestRail-style tools.
The suite is named after the target, not ``pytest``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def controls_of(testcase: ET.Element) -> list[str]:
    return [p.get("value", "") for p in testcase.iter("property") if p.get("name") == "control"]


def _suite_properties(suite: ET.Element) -> ET.Element:
    props = suite.find("properties")
    if props is None:
        props = ET.Element("properties")
        suite.insert(0, props)
    return props


class _SuiteProperties:
    """A suite's ``<properties>``, made on first use; each (name, value) added once.

    A set, not a scan of what is there: a fleet run moves ~10^4 testcase properties up, and
    scanning the block for each was quadratic (70 s of a 60-database run's profile)."""

    def __init__(self, suite: ET.Element) -> None:
        self.suite = suite
        self.block: ET.Element | None = None
        self.seen: set[tuple[str | None, str | None]] = set()

    def add(self, name: str, value: str) -> None:
        if self.block is None:
            self.block = _suite_properties(self.suite)
            self.seen = {(p.get("name"), p.get("value")) for p in self.block.iter("property")}
        if (name, value) not in self.seen:
            self.seen.add((name, value))
            ET.SubElement(self.block, "property", name=name, value=value)


def tag_names(path: Path, suite_name: str | None = None) -> int:
    """Append ``[IDs]`` to each testcase that carries control properties, move testcase
    properties to its suite, name the suite ``suite_name``; return how many names changed.
    Idempotent: a second pass finds no testcase properties and changes nothing."""
    tree = ET.parse(path)
    n = 0
    changed = False
    for suite in tree.getroot().iter("testsuite"):
        if suite_name and suite.get("name") != suite_name:
            suite.set("name", suite_name)
            changed = True
        props = _SuiteProperties(suite)
        for tc in suite.findall("testcase"):
            own = tc.findall("properties")
            if not own:
                continue
            ids = controls_of(tc)
            where = f"{tc.get('classname', '')}::{tc.get('name', '')}"
            for p in (p for block in own for p in block.iter("property")):
                props.add(f"{p.get('name', '')}:{where}", p.get("value", ""))
            for cid in ids:
                props.add("control", cid)
            for block in own:
                tc.remove(block)
            changed = True
            suffix = f" [{','.join(ids)}]"
            if ids and not tc.get("name", "").endswith(suffix):
                tc.set("name", tc.get("name", "") + suffix)
                n += 1
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return n
