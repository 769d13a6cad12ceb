"""The control catalogue as data: one entry per control, the source reports, CLI and docs read.

Each control says what it requires, which layers prove it (what the suites and
scenarios really look at), which ``Target.thresholds`` fields it judges against,
how to fix it, and where it maps in compliance frameworks. One module per family
(``tls.py``, ``net.py``, ...) holds its controls and their checks; ``controls.py`` lists
the families; ``registry.py`` is the catalogue by ID and selection by ID or glob. This
package file imports nothing, so a family module can use its siblings without a circle.
"""
