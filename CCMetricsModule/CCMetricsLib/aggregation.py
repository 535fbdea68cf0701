"""Aggregating CC-Metrics over the cases of a dataset.

Per prediction (and label), for every score column: the per-case mean (each case weighs the same),
SD (ddof=1), median and a seeded percentile bootstrap 95 % CI of the dataset mean (cases resampled
with replacement); for the CC scores also the pooled mean over all reference components of all
cases (each lesion weighs the same, the reference package's ``cc_reduction="overall"``). Counts
(components, detected, missed ...) are summed over cases. Cases whose CC score is not finite
(``distance_worst=inf``) make the mean inf and the CI NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .evaluation import INSTANCE_KEYS, METRICS

#: Default number of bootstrap resamples and seed of the dataset-mean CI.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_mean_ci(
    values: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: ``resamples`` rows of ``len(values)`` indices drawn with
    ``numpy.random.default_rng(seed).integers``; NaN for no values or non-finite values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(int(resamples), x.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def describe(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> dict[str, float]:
    """mean, sd (ddof=1; NaN for one case), median, ci95_low, ci95_high of per-case values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        nan = float("nan")
        return {"mean": nan, "sd": nan, "median": nan, "ci95_low": nan, "ci95_high": nan}
    low, high = bootstrap_mean_ci(x, resamples, seed)
    finite = bool(np.all(np.isfinite(x)))
    return {
        "mean": float(np.mean(x)),
        "sd": float(np.std(x, ddof=1)) if x.size > 1 and finite else float("nan"),
        "median": float(np.median(x)),
        "ci95_low": low,
        "ci95_high": high,
    }


def _score_keys(row: Mapping[str, Any]) -> list[str]:
    keys = []
    for metric in METRICS:
        for prefix in ("standard_", "cc_"):
            if f"{prefix}{metric}" in row:
                keys.append(f"{prefix}{metric}")
    return keys + [k for k in INSTANCE_KEYS if k in row]


def _is_count(key: str) -> bool:
    return key.startswith("n_") or key.endswith("_n_missed")


def summarize_dataset(
    case_rows: Sequence[Mapping[str, Any]],
    component_rows: Sequence[Mapping[str, Any]] = (),
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[dict[str, Any]]:
    """One row per (prediction, label) over the finished cases (``status`` "ok" or absent).

    ``case_rows`` are per-case summary rows (``CCMetricsResult.summary()`` plus ``case``);
    ``component_rows`` are the per-component rows of the same cases (for the pooled means).
    Columns: ``cases``, ``cases_failed``, summed counts, then for every score ``<key>`` (its
    per-case mean), ``<key>_sd``, ``<key>_median``, ``<key>_ci95_low``, ``<key>_ci95_high``, and
    for CC scores ``<key>_pooled``; each CC distance is followed by its summed ``_n_missed``.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    failed: dict[tuple, int] = {}
    for row in case_rows:
        key = (row["prediction"], row.get("label"))
        if row.get("status", "ok") != "ok":
            failed[key] = failed.get(key, 0) + 1
            groups.setdefault(key, [])
            continue
        groups.setdefault(key, []).append(row)
    pooled_values: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in component_rows:
        pooled_values.setdefault((row["prediction"], row.get("label")), []).append(row)
    summary = []
    for (prediction, label), members in groups.items():
        out: dict[str, Any] = {
            "prediction": prediction,
            "label": label,
            "cases": len(members),
            "cases_failed": failed.get((prediction, label), 0),
        }
        if members:
            for key in members[0]:
                if _is_count(key) and not key.endswith("_n_missed"):
                    out[key] = int(sum(int(m[key]) for m in members))
            components = pooled_values.get((prediction, label), [])
            for key in _score_keys(members[0]):
                stats = describe([float(m[key]) for m in members], resamples, seed)
                out[key] = stats["mean"]
                out.update(
                    {f"{key}_{name}": stats[name] for name in ("sd", "median", "ci95_low", "ci95_high")}
                )
                if key.startswith("cc_"):
                    metric = key[3:]
                    values = [float(c[metric]) for c in components if metric in c]
                    out[f"{key}_pooled"] = float(np.mean(values)) if values else float("nan")
                    if f"{key}_n_missed" in members[0]:
                        out[f"{key}_n_missed"] = int(sum(int(m[f"{key}_n_missed"]) for m in members))
        summary.append(out)
    return summary
