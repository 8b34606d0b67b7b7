"""Configuration analysis, in the style of ``istioctl analyze``: every analyzer over a whole set of
resources, each finding with a stable code (``LM0101``), a level, the file:line of the most
precise field, the resource and how to fix it. The codes are listed in docs/analyze.md.

```python
findings = analyze(resources, workloads=[WorkloadInfo("shop", "cart-0", {"app": "cart"}, "cart", True)])
report = analyze_paths(["config/"])      # load (problems are LM0001 Errors), then analyze
for finding in report.findings:
    print(finding)    # Error [LM0101] VirtualService shop/cart (vs.yaml:14) spec.http[0]...: ... Fix: ...
```
"""

from loom.analyze.engine import analyze
from loom.analyze.finding import LOAD_PROBLEM, Code, Finding, Level
from loom.analyze.registry import ANALYZERS, Analyzer, all_codes
from loom.analyze.report import Report, analyze_paths
from loom.analyze.workloads import WorkloadInfo

__all__ = [
    "ANALYZERS",
    "LOAD_PROBLEM",
    "Analyzer",
    "Code",
    "Finding",
    "Level",
    "Report",
    "WorkloadInfo",
    "all_codes",
    "analyze",
    "analyze_paths",
]
