"""Parity: how far a candidate's outputs are from a reference's, one formula for every target.

ONNX Runtime against PyTorch, an ORT-format file against its test vectors, a
TensorRT engine against ONNX Runtime, an fp16/int8 graph against fp32: each
feeds `Parity.add` with the reference and candidate outputs of the same
inputs (once per batch size) and reads one report per output:

    max_abs, max_rel          largest |candidate - reference| and that over |reference|
    rel_rms                   RMS of the difference over RMS of the reference
    nan, inf                  non-finite values the candidate has where the reference is finite
    mismatch                  share of elements outside atol + rtol * |reference|

An output passes when its shapes agree and `mismatch` is at most the
tolerance's `mismatch` (0 by default: every element within tolerance).
Integer and boolean outputs get no relative slack (with atol below 1 they
must match exactly). Tolerances come from the target's configuration and may be
overridden per graph and output in `GraphSpec.tolerances`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from zoo.specs import GraphSpec


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float = 0.0
    mismatch: float = 0.0  # share of elements allowed outside atol + rtol * |reference|


def tolerance_for(graph: GraphSpec, output: str, default: Tolerance, precision: str = "fp32") -> Tolerance:
    """`default` with the graph's overrides applied: "*" then the output's own entry,
    the unsuffixed keys for fp32 comparisons, the "@fp16"/"@int8" keys for those."""
    suffix = "" if precision == "fp32" else f"@{precision}"
    result = default
    for key in (f"*{suffix}", f"{output}{suffix}"):
        result = replace(result, **{k: float(v) for k, v in graph.tolerances.get(key, {}).items()})
    return result


@dataclass
class OutputParity:
    """The running comparison of one output over every call it was fed."""

    tolerance: Tolerance
    elements: int = 0
    mismatched: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    nan: int = 0
    inf: int = 0
    shape_errors: list[str] = field(default_factory=list)
    _squared_error: float = 0.0
    _squared_reference: float = 0.0
    first_outside: str = ""  # the `where` of the first call with elements outside the tolerance

    def add(self, reference: np.ndarray, candidate: np.ndarray, where: str = "") -> None:
        reference, candidate = np.asarray(reference), np.asarray(candidate)
        if reference.shape != candidate.shape:
            self.shape_errors.append(f"shape {candidate.shape} instead of {reference.shape}{where}")
            return
        ref, got = reference.astype(np.float64), candidate.astype(np.float64)
        finite = np.isfinite(ref)
        self.nan += int((np.isnan(got) & ~np.isnan(ref)).sum())
        self.inf += int((np.isinf(got) & finite).sum())
        both_same = (ref == got) | (np.isnan(ref) & np.isnan(got))  # equal infinities and NaN where the reference has NaN
        error = np.where(both_same, 0.0, np.abs(got - ref))
        error = np.where(np.isnan(error), np.inf, error)
        allowed = self.tolerance.atol
        if reference.dtype.kind in "fc":  # ids, actions and masks get no relative slack: an id off by one is wrong
            allowed = allowed + self.tolerance.rtol * np.abs(np.where(finite, ref, 0.0))
        self.elements += error.size
        outside = int((error > allowed).sum())
        if outside and not self.mismatched:
            self.first_outside = where
        self.mismatched += outside
        self.max_abs = max(self.max_abs, float(error.max(initial=0.0)))
        self.max_rel = max(self.max_rel, float((error / (np.abs(np.where(finite, ref, 0.0)) + 1e-12)).max(initial=0.0)))
        finite_error = np.where(np.isfinite(error), error, 0.0)
        self._squared_error += float((finite_error**2).sum())
        self._squared_reference += float((np.where(finite, ref, 0.0) ** 2).sum())

    @property
    def mismatch(self) -> float:
        return self.mismatched / self.elements if self.elements else 0.0

    @property
    def rel_rms(self) -> float:
        return float(np.sqrt(self._squared_error / max(self._squared_reference, 1e-24)))

    @property
    def passed(self) -> bool:
        return not self.shape_errors and self.mismatch <= self.tolerance.mismatch

    def problem(self) -> str | None:
        """Why this output fails, in a phrase, or None."""
        if self.shape_errors:
            return self.shape_errors[0]
        if self.passed:
            return None
        extra = f", {self.nan} NaN" if self.nan else ""
        extra += f", {self.inf} Inf" if self.inf else ""
        extra += f", first{self.first_outside}" if self.first_outside else ""
        return (
            f"max abs {self.max_abs:.3g}, {self.mismatch:.2%} of {self.elements} elements outside "
            f"atol {self.tolerance.atol:g} + rtol {self.tolerance.rtol:g}{extra} "
            f"(allowed: {self.tolerance.mismatch:.2%})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "rel_rms": round(self.rel_rms, 9),
            "nan": self.nan,
            "inf": self.inf,
            "mismatch": round(self.mismatch, 9),
            "atol": self.tolerance.atol,
            "rtol": self.tolerance.rtol,
            "max_mismatch": self.tolerance.mismatch,
            "passed": self.passed,
        }


class Parity:
    """The comparison of every output of one graph, fed call by call.

        parity = Parity(graph, Tolerance(atol, rtol), precision="fp32")
        for batch in (1, 8):
            parity.add(reference.run(feeds), candidate.run(feeds), f" at batch {batch}")
        parity.check("ONNX Runtime vs PyTorch")   # ValidationError naming the first failing output
    """

    def __init__(self, graph: GraphSpec, default: Tolerance, precision: str = "fp32"):
        self.graph = graph
        self.outputs = {t.name: OutputParity(tolerance_for(graph, t.name, default, precision)) for t in graph.outputs}

    def add(self, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], where: str = "") -> None:
        for name, output in self.outputs.items():
            if name in reference:
                output.add(reference[name], candidate[name], where)

    @property
    def passed(self) -> bool:
        return all(output.passed for output in self.outputs.values())

    def failure(self) -> str | None:
        """The first failing output and why, or None."""
        for name, output in self.outputs.items():
            problem = output.problem()
            if problem:
                return f"output '{name}': {problem}"
        return None

    def check(self, what: str, consequence: str = "the bundle was not written") -> None:
        from zoo.errors import ValidationError

        failure = self.failure()
        if failure:
            raise ValidationError(f"{what} disagree on graph '{self.graph.name}', {failure}; {consequence}")

    def summary(self) -> str:
        return "; ".join(
            f"{name} max abs {o.max_abs:.2e}, max rel {o.max_rel:.2e}" + (f", {o.mismatch:.2%} outside" if o.mismatched else "")
            for name, o in self.outputs.items()
        )

    def to_json(self, **extra: Any) -> dict[str, dict[str, Any]]:
        return {name: {**output.to_json(), **extra} for name, output in self.outputs.items()}


def compare(
    graph: GraphSpec, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], default: Tolerance, precision: str = "fp32"
) -> Parity:
    """One call's comparison: `Parity` fed once."""
    parity = Parity(graph, default, precision)
    parity.add(reference, candidate)
    return parity
