"""The statistics every table, macro and figure of the paper uses: one t-interval, one paired test.

* :func:`t_interval` - mean and 95% Student-t interval of one sample (seeds of one cell).
* :func:`paired_difference` - ``a - b`` over the seeds both ran (same seed = same data order),
  with its 95% t-interval and a paired t-test (``scipy.stats.ttest_rel``), named in the result.
* :func:`t_errorbar` - the same interval as a callable for seaborn's ``errorbar=``, so figures
  show exactly what the tables print (never seaborn's default, an unseeded bootstrap).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

CONFIDENCE = 0.95
PAIRED_TEST = "paired t-test"


def _t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def _finite(values: Iterable[Any]) -> np.ndarray:
    out = []
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return np.asarray(out, dtype=float)


@dataclasses.dataclass(frozen=True)
class Interval:
    """Mean of ``n`` finite values with its t-interval (``ci95`` is the half-width; NaN if n < 2)."""

    n: int
    mean: float
    std: float
    ci95: float

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95

    def to_json(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci95": self.ci95, "ci_low": self.low,
                "ci_high": self.high}


def t_interval(values: Iterable[Any], confidence: float = CONFIDENCE) -> Interval:
    """Mean, sample std (ddof=1) and t-interval half-width of the finite ``values``.

    None, NaN and infinities are dropped. With no value the mean is NaN; with one value the std
    and the interval are NaN (one seed says nothing about spread).

    >>> round(t_interval([1.0, 2.0, 3.0]).ci95, 4)
    2.4841
    """
    v = _finite(values)
    n = len(v)
    if n == 0:
        return Interval(0, float("nan"), float("nan"), float("nan"))
    mean = float(v.mean())
    if n == 1:
        return Interval(1, mean, float("nan"), float("nan"))
    std = float(v.std(ddof=1))
    return Interval(n, mean, std, _t_quantile(n - 1, confidence) * std / math.sqrt(n))


def t_errorbar(values: Iterable[Any]) -> tuple[float, float]:
    """``(low, high)`` of :func:`t_interval`, for ``seaborn.barplot(..., errorbar=t_errorbar)``.

    With fewer than two values the bar has no whisker (low = high = mean).
    """
    iv = t_interval(values)
    if math.isnan(iv.ci95):
        return iv.mean, iv.mean
    return iv.low, iv.high


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``a - b`` paired by seed: mean, t-interval and the paired t-test's p-value.

    ``wins`` counts seeds where ``a > b``; ``seeds`` are the seeds both sides ran. ``p_value`` is
    NaN when there are fewer than two pairs or every difference is identical (no spread to test).
    """

    n: int
    mean: float
    ci95: float
    t_stat: float
    p_value: float
    wins: int
    seeds: tuple[Any, ...]
    test: str = PAIRED_TEST

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95

    @property
    def decided(self) -> bool:
        """The whole interval lies on one side of zero."""
        return not math.isnan(self.ci95) and (self.low > 0 or self.high < 0)

    def verdict(self, above: str = "above", below: str = "below", tie: str = "indistinguishable from") -> str:
        """``above`` / ``below`` when the interval excludes zero, else ``tie`` (also for n < 2)."""
        if math.isnan(self.mean) or math.isnan(self.ci95):
            return tie
        if self.low > 0:
            return above
        if self.high < 0:
            return below
        return tie

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "ci95": self.ci95, "ci_low": self.low, "ci_high": self.high,
                "t": self.t_stat, "p": self.p_value, "wins": self.wins, "test": self.test}


def paired_difference(a: Mapping[Any, Any], b: Mapping[Any, Any], confidence: float = CONFIDENCE) -> PairedDifference:
    """``a[seed] - b[seed]`` over the seeds present and finite in both, with a paired t-test.

    ``a`` and ``b`` map a seed to one value (a metric of one cell). Seeds only one side ran are
    left out: the comparison is paired or it is nothing.

    >>> d = paired_difference({0: 0.9, 1: 0.8, 2: 0.85}, {0: 0.7, 1: 0.7, 2: 0.7})
    >>> d.n, round(d.mean, 3), d.verdict()
    (3, 0.15, 'above')
    """
    seeds = tuple(s for s in a if s in b and _finite([a[s], b[s]]).size == 2)
    d = np.asarray([float(a[s]) - float(b[s]) for s in seeds], dtype=float)
    iv = t_interval(d, confidence)
    t_stat, p = float("nan"), float("nan")
    if iv.n >= 2 and iv.std > 0:
        t_stat = iv.mean / (iv.std / math.sqrt(iv.n))
        from scipy import stats

        p = float(2 * stats.t.sf(abs(t_stat), iv.n - 1))  # identical to scipy.stats.ttest_rel(a, b)
    elif iv.n >= 2:  # every difference identical: a zero-width interval, nothing to test
        p = 1.0 if iv.mean == 0 else 0.0
    ci = iv.ci95 if iv.n >= 2 else float("nan")
    return PairedDifference(n=iv.n, mean=iv.mean, ci95=ci, t_stat=t_stat, p_value=p, wins=int((d > 0).sum()),
                            seeds=seeds)
