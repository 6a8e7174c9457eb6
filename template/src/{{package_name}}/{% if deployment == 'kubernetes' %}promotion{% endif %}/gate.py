"""The validation gate: may a candidate model replace the champion a stage holds?

Reads the candidate's metrics and the champion's (both ``metrics/metrics.json``, as the
evaluate stage writes them: the headline metrics and the dummy baseline's beside them) and
the ``promotion`` section of ``params.yaml``:

    mode: enabled | dry_run | disabled   dry_run reports and never fails; disabled skips
    metric: accuracy                     the primary metric (rmse, mae: lower is better)
    max_drop: 0.01                       the candidate may be this much worse than the
                                         champion, relative (0.01: 1%)
    min_lift_over_baseline: 0.0          and must beat the dummy baseline by this share, on
                                         the metric the baseline has (accuracy; RMSE)

Two checks: the floor against the dummy baseline, and the primary metric against the
champion's (none yet: passed, and said so). Gives the verdict and a Markdown table of both
models' metrics side by side, for the job summary and the promotion pull request's body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..settings import UserError, param

MODES = ("enabled", "dry_run", "disabled")
LOWER_IS_BETTER = {"rmse", "mae", "baseline_rmse"}
BASELINES = {"accuracy": "baseline_accuracy", "rmse": "baseline_rmse"}


@dataclass(frozen=True)
class Policy:
    """The ``promotion`` section of params.yaml."""

    mode: str
    metric: str
    max_drop: float
    min_lift: float


def load_policy(section: dict[str, Any]) -> Policy:
    """The policy from params.yaml's ``promotion`` section; a UserError naming a bad value."""
    mode = str(param(section, "mode", str))
    if mode not in MODES:
        raise UserError(f"params.yaml: 'promotion.mode' is {mode!r}, not one of {', '.join(MODES)}")
    policy = Policy(
        mode,
        param(section, "metric", str),
        param(section, "max_drop", float),
        param(section, "min_lift_over_baseline", float),
    )
    for name, value in (("max_drop", policy.max_drop), ("min_lift_over_baseline", policy.min_lift)):
        if not 0 <= value < 1:
            raise UserError(f"params.yaml: 'promotion.{name}' is {value}, not a share in [0, 1)")
    return policy


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Verdict:
    """The gate's result: its checks, and whether it blocks the promotion."""

    policy: Policy
    candidate: str
    champion: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def blocking(self) -> bool:
        """Only an enabled gate that failed stops a promotion."""
        return self.policy.mode == "enabled" and not self.passed

    @property
    def headline(self) -> str:
        if self.policy.mode == "disabled":
            return "skipped (promotion.mode: disabled)"
        if self.passed:
            return "passed"
        return "failed" if self.blocking else "would fail (promotion.mode: dry_run)"


def judge(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    policy: Policy,
    names: tuple[str, str | None] = ("candidate", None),
) -> Verdict:
    """The two checks of the candidate (and the champion's metrics, None when the stage holds
    no model yet); ``names``: how the report names both."""
    verdict = Verdict(policy, names[0], names[1])
    if policy.mode == "disabled":
        return verdict
    if policy.metric not in candidate:
        known = ", ".join(k for k, v in candidate.items() if _number(v))
        raise UserError(
            f"params.yaml: 'promotion.metric' is {policy.metric!r}, which the candidate's "
            f"metrics lack (they have: {known})"
        )
    verdict.checks.append(_floor(candidate, policy))
    verdict.checks.append(_against_champion(candidate, champion, policy))
    return verdict


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _worse_by(candidate: float, champion: float, metric: str) -> float:
    """How much worse the candidate is, relative to the champion (negative: better)."""
    change = candidate - champion if metric in LOWER_IS_BETTER else champion - candidate
    return change / abs(champion) if champion else change


def _floor(candidate: dict[str, Any], policy: Policy) -> Check:
    name = next((m for m in BASELINES if _number(candidate.get(m))), None)
    baseline = candidate.get(BASELINES[name]) if name else None
    if name is None or not _number(baseline):
        return Check("beats the dummy baseline", False, "the metrics have no dummy baseline")
    value = float(candidate[name])
    lift = -_worse_by(value, float(baseline), name)
    passed = lift >= policy.min_lift
    detail = (
        f"{name} {value:.4g} against the baseline's {baseline:.4g}: {lift:+.1%} "
        f"(at least {policy.min_lift:+.1%})"
    )
    return Check("beats the dummy baseline", passed, detail)


def _against_champion(
    candidate: dict[str, Any], champion: dict[str, Any] | None, policy: Policy
) -> Check:
    name, metric = f"{policy.metric} against the champion", policy.metric
    if champion is None:
        return Check(name, True, "no champion: the stage holds no model yet")
    if not _number(champion.get(metric)):
        return Check(name, True, f"the champion has no {metric}: not compared")
    value, held = float(candidate[metric]), float(champion[metric])
    worse = _worse_by(value, held, metric)
    how = f"{worse:.1%} worse" if worse > 0 else f"{-worse:.1%} better"
    detail = f"{value:.4g} against {held:.4g}: {how} (at most {policy.max_drop:.1%} worse)"
    return Check(name, worse <= policy.max_drop, detail)


def report(verdict: Verdict, candidate: dict[str, Any], champion: dict[str, Any] | None) -> str:
    """Markdown: the verdict, its checks, and both models' metrics side by side."""
    policy = verdict.policy
    against = f"`{verdict.champion}`" if verdict.champion else "no champion"
    lines = [
        f"### Validation gate: {verdict.headline}",
        "",
        f"Candidate `{verdict.candidate}` against {against} "
        f"(mode `{policy.mode}`, primary metric `{policy.metric}`).",
        "",
    ]
    lines += [f"- {'✅' if c.passed else '❌'} {c.name}: {c.detail}" for c in verdict.checks]
    lines += ["", "| metric | candidate | champion | change |", "|---|---:|---:|---:|"]
    names = [k for k in candidate if _number(candidate[k])]
    names += [k for k in champion or {} if k not in names and _number(champion[k])]
    for key in names:
        new, old = candidate.get(key), (champion or {}).get(key)
        change = f"{new - old:+.4g}" if _number(new) and _number(old) else ""
        shown = f"**{key}**" if key == policy.metric else key
        lines.append(f"| {shown} | {_cell(new)} | {_cell(old)} | {change} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.4g}" if _number(value) else "–"
