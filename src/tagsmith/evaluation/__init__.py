"""Evaluation harness: gold datasets -> predictions -> metrics -> reports.

`evaluate(EvalPlan(...))` runs a whole comparison and returns a `Report`; `tagsmith eval`
is a thin shell over it. `eval/` at the top of the repository holds benchmarks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalPlan", "Report", "evaluate"]


def __getattr__(name: str) -> Any:  # lazy: `import tagsmith.gold` stays light
    if name in __all__:
        from tagsmith.evaluation import matrix as module

        return getattr(module, name)
    raise AttributeError(name)
