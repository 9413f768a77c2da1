"""Champion/challenger rule: promote only a candidate that is no worse on any configured metric.

Rule (Pareto dominance): with no champion, promote. Otherwise promote when the candidate is at
least as good as the champion on EVERY rule's metric and strictly better on at least one. A
candidate worse on any configured metric is never promoted, whatever its gains elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

_MODES = ("min", "max")


def should_promote(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    rules: Sequence[Mapping[str, str]],
) -> tuple[bool, str]:
    """(promote?, reason) for ``candidate`` vs ``champion`` under ``rules`` [{metric, mode}]."""
    if not rules:
        raise ValueError("should_promote: no rules configured")
    for rule in rules:
        if rule.get("mode") not in _MODES:
            raise ValueError(f"should_promote: rule {dict(rule)} needs mode 'min' or 'max'")
        if "metric" not in rule:
            raise ValueError(f"should_promote: rule {dict(rule)} names no metric")
        _value(candidate, rule["metric"], "candidate")
    if champion is None:
        return True, "no champion yet"
    better, worse = [], []
    for rule in rules:
        metric = rule["metric"]
        cand, champ = _value(candidate, metric, "candidate"), _value(champion, metric, "champion")
        gain = champ - cand if rule["mode"] == "min" else cand - champ
        if gain > 0:
            better.append(f"{metric} {champ:.4g} -> {cand:.4g}")
        elif gain < 0:
            worse.append(f"{metric} {champ:.4g} -> {cand:.4g}")
    if worse:
        return False, "worse on " + ", ".join(worse)
    if not better:
        return False, "no better than the champion on any metric"
    return True, "better on " + ", ".join(better) + "; no worse elsewhere"


def _value(metrics: Mapping[str, float], metric: str, who: str) -> float:
    """The metric's value as a finite float, or a clear error naming who lacks it."""
    if metric not in metrics:
        raise KeyError(f"should_promote: {who} has no metric {metric!r} (has {sorted(metrics)})")
    value = float(metrics[metric])
    if not math.isfinite(value):
        raise ValueError(f"should_promote: {who} metric {metric!r} is {value}, not finite")
    return value
