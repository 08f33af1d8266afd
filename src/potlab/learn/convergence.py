"""When to stop: the tracked quantity within tolerance of the reference for K iterations
in a row (seed 002's barrier error oscillated, so one good iteration is not enough), a
label budget spent, a maximum number of iterations, or no scored frame above an
uncertainty level."""

from __future__ import annotations

from dataclasses import dataclass

from potlab.learn.selectors import KCAL_MOL_IN_EV


@dataclass(frozen=True)
class Convergence:
    """``tolerance_kcal_mol`` (None: no target), ``consecutive`` iterations, ``max_iterations``
    committees, ``label_budget`` new labels (None: none), ``uncertainty_below`` (None: not
    used; in the score measure's unit)."""

    tolerance_kcal_mol: float | None = 1.0
    consecutive: int = 3
    max_iterations: int = 10
    label_budget: int | None = None
    uncertainty_below: float | None = None

    def after_measure(self, errors_eV: list[float | None], iteration: int,
                      labels_added: int) -> str | None:
        """Why to stop after iteration ``iteration`` was measured (``errors_eV``: the
        tracked quantity's error of every iteration so far), or None to go on."""
        if self.tolerance_kcal_mol is not None and len(errors_eV) >= self.consecutive:
            tol = self.tolerance_kcal_mol * KCAL_MOL_IN_EV
            last = errors_eV[-self.consecutive:]
            if all(e is not None and abs(e) < tol for e in last):
                return (f"converged: error below {self.tolerance_kcal_mol} kcal/mol for "
                        f"{self.consecutive} iterations in a row")
        if iteration + 1 >= self.max_iterations:
            return f"max_iterations ({self.max_iterations}) reached"
        if self.label_budget is not None and labels_added >= self.label_budget:
            return f"label budget ({self.label_budget}) spent: {labels_added} new labels"
        return None

    def after_score(self, max_uncertainty: float) -> str | None:
        if self.uncertainty_below is not None and max_uncertainty < self.uncertainty_below:
            return (f"converged: the largest uncertainty {max_uncertainty:.4g} is below "
                    f"{self.uncertainty_below}")
        return None

    def labels_left(self, labels_added: int) -> int | None:
        return None if self.label_budget is None else max(0, self.label_budget - labels_added)


def labels_added(record, before: int | None = None) -> int:
    """New labels in ``record`` (:class:`potlab.learn.record.Record`) of the iterations
    before ``before`` (None: all recorded)."""
    return sum(record.get(k, "label")["labelled"] for k in record.iterations()
               if (before is None or k < before) and record.get(k, "label") is not None)


def judge(convergence: Convergence, record, i: int, error_eV: float | None) -> str | None:
    """Why to stop after iteration ``i``'s measure (its error ``error_eV``), judged from
    ``record`` and the limits of ``convergence``, or None to go on."""
    errors = [record.get(k, "measure")["error_eV"] for k in range(i)
              if record.get(k, "measure") is not None]
    return convergence.after_measure(errors + [error_eV], i, labels_added(record, i))
