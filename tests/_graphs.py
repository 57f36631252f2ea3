"""What a dask graph carries: the tests that check "the graph carries no arrays"."""

from __future__ import annotations

import numpy as np


def arrays_in(graph) -> list[np.ndarray]:
    """Every ndarray held by the tasks of a graph (walking tuples, lists, dicts and task specs)."""
    from dask._task_spec import DataNode, Task, TaskRef

    found, stack = [], list(dict(graph).values())
    while stack:
        x = stack.pop()
        if isinstance(x, np.ndarray):
            found.append(x)
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, DataNode):
            stack.append(x.value)
        elif isinstance(x, Task):
            stack.extend([*x.args, *x.kwargs.values()])
        elif isinstance(x, TaskRef):
            continue
    return found
