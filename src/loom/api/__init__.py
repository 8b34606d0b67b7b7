"""The operator-facing API: resource kinds (Istio, Gateway API, SMI, Kubernetes Service) and YAML
loading with file:line positions and validation.

```python
result = load_paths(["config/"])
for problem in result.problems:
    print(problem)            # file:line: Kind ns/name: spec.http[0]...: message (hint: ...)
for resource in result.resources:
    resource.ref, resource.spec, resource.line_of("spec.http[0].route[1].weight"), resource.extensions
```
"""

from loom.api.kinds import KINDS, KindInfo, Resource, Source, supported
from loom.api.load import LoadResult, load_paths, load_text
from loom.api.problems import LoadProblem

__all__ = [
    "KINDS",
    "KindInfo",
    "LoadProblem",
    "LoadResult",
    "Resource",
    "Source",
    "load_paths",
    "load_text",
    "supported",
]
