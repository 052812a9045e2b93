"""Small statistics for evaluation and reports: binomial intervals, classifier scores, seed tests,
a bootstrap over seeds and problems, and the seeds a difference needs.

Stdlib only (no torch, no numpy, no scipy), so `vgrout.report` can use it without pulling in
torch, and every formula is visible here. See `docs/evaluation.md` for how each is used.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

Z_95 = 1.959963984540054  # standard-normal quantile at 0.975


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (95% by default).

    Chosen over the normal (Wald) interval because hack and solve rates sit near 0 or 1,
    where Wald collapses to a zero-width interval.
    """
    if n <= 0:
        raise ValueError(f"wilson_interval needs n > 0 trials, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of `values`, ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1  # ranks i+1 .. j+1 share their mean
        for k in range(i, j + 1):
            ranks[order[k]] = mean_rank
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` as a detector of `labels` (True = positive).

    Mann–Whitney form with average ranks for ties: AUROC = (R_pos − n_pos(n_pos+1)/2) /
    (n_pos·n_neg). It is the probability that a random positive outscores a random negative
    (ties count one half). NaN when either class is empty: the quantity is undefined there.
    """
    if len(scores) != len(labels):
        raise ValueError(f"auroc: {len(scores)} scores but {len(labels)} labels")
    for s in scores:
        if not math.isfinite(s):
            raise ValueError(f"auroc: scores must be finite, got {s!r}")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(list(scores))
    rank_sum_pos = sum(r for r, y in zip(ranks, labels) if y)
    u_pos = rank_sum_pos - n_pos * (n_pos + 1) / 2
    return u_pos / (n_pos * n_neg)


@dataclass(frozen=True)
class Confusion:
    """Counts for one binary decision ("flagged") against a truth label ("positive")."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, flagged: Sequence[bool], positive: Sequence[bool]) -> "Confusion":
        if len(flagged) != len(positive):
            raise ValueError(f"Confusion.of: {len(flagged)} decisions but {len(positive)} labels")
        tp = sum(1 for f, y in zip(flagged, positive) if f and y)
        fp = sum(1 for f, y in zip(flagged, positive) if f and not y)
        fn = sum(1 for f, y in zip(flagged, positive) if not f and y)
        return cls(tp=tp, fp=fp, fn=fn, tn=len(flagged) - tp - fp - fn)

    @property
    def precision(self) -> float:
        """tp / (tp + fp); NaN when nothing was flagged."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        """tp / (tp + fn); NaN when there are no positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    def f_beta(self, beta: float = 0.5) -> float:
        return f_beta(self.tp, self.fp, self.fn, beta)


def f_beta(tp: int, fp: int, fn: int, beta: float = 0.5) -> float:
    """F_β = (1+β²)·tp / ((1+β²)·tp + β²·fn + fp). β = 0.5 weighs precision over recall,
    because routing a clean rollout costs the deployed block real learning. NaN only when
    tp = fp = fn = 0 (no positives and nothing flagged)."""
    if beta <= 0:
        raise ValueError(f"f_beta needs beta > 0, got {beta}")
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denom if denom else float("nan")


def mean_sem(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, standard error of the mean with ddof=1, n). SEM is NaN for n < 2."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_sem needs at least one value")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n), n


# ---- Student t tail, via the regularised incomplete beta function ----------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for I_x(a, b) (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"student_t_sf needs df > 0, got {df}")
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison across seeds: a − b per seed.

    `test` names the test behind `p` ("paired t-test, two-sided"). `p` is NaN when it is
    undefined: fewer than two pairs, or every difference equal (zero spread). `p_sign_flip`
    is the exact two-sided sign-flip permutation p-value, which assumes no normality but
    cannot go below 2/2^n (0.25 at n = 3).
    """

    n: int
    diffs: tuple[float, ...]
    mean: float
    sem: float
    t: float
    df: int
    p: float
    p_sign_flip: float
    test: str = "paired t-test, two-sided"

    @property
    def signs(self) -> str:
        """One character per pair: + (a > b), − (a < b), 0 (equal)."""
        return "".join("+" if d > 0 else "-" if d < 0 else "0" for d in self.diffs)


def sign_flip_p(diffs: Sequence[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of mean(diffs) against 0."""
    n = len(diffs)
    if n == 0:
        raise ValueError("sign_flip_p needs at least one difference")
    observed = abs(sum(diffs)) - 1e-12  # tolerance: a flip that ties the observed sum counts
    hits = sum(
        1 for signs in itertools.product((1, -1), repeat=n)
        if abs(sum(s * d for s, d in zip(signs, diffs))) >= observed
    )
    return hits / 2**n


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired t-test of a against b (same seeds, same order): t = mean(d)/SEM(d), df = n−1."""
    if len(a) != len(b):
        raise ValueError(f"paired_test needs equal lengths (pairs by seed), got {len(a)} and {len(b)}")
    if len(a) == 0:
        raise ValueError("paired_test needs at least one pair")
    diffs = tuple(x - y for x, y in zip(a, b))
    mean, sem, n = mean_sem(diffs)
    # Rates like 17/20 − 18/20 differ from 0.05 in the last bits; a spread that small is zero.
    if n < 2 or not sem > 1e-12 * max(1.0, abs(mean)):
        t, p = float("nan"), float("nan")
    else:
        t = mean / sem
        p = min(1.0, 2.0 * student_t_sf(abs(t), n - 1))
    return PairedTest(
        n=n, diffs=diffs, mean=mean, sem=sem, t=t, df=n - 1, p=p, p_sign_flip=sign_flip_p(diffs)
    )


# ---- Hierarchical bootstrap over seeds and problems -------------------------------------

BOOT_B = 2000  # bootstrap resamples: percentile 2.5/97.5 points move by ~0.1 SE between seeds of the RNG
BOOT_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval of a mean (or a difference of means).

    `estimate` is the observed statistic (mean over seeds of each seed's mean over problems),
    `lo`/`hi` the (1 − level)/2 and (1 + level)/2 percentiles of its B resamples. `n_seeds` and
    `n_units` (the fewest problems of any seed) say what was resampled; `paired_units` is False
    for a difference whose problems could not be paired (they were resampled independently).
    """

    estimate: float
    lo: float
    hi: float
    level: float
    B: int
    n_seeds: int
    n_units: int
    paired_units: bool = True

    def covers(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def inside(self, margin: float) -> bool:
        """The whole interval lies within [−margin, +margin] (equivalence within the margin)."""
        tol = 1e-12
        return -margin - tol <= self.lo and self.hi <= margin + tol

    @property
    def width(self) -> float:
        return self.hi - self.lo


class _MeanSampler:
    """Draws the mean of n values resampled with replacement from `values`.

    Resampling n values from a list is a multinomial draw of how often each distinct value
    comes up, so it is drawn as one (conditional) binomial per distinct value, by inverse CDF
    on cached tables: the same distribution as n `choice` calls at a small fraction of the cost
    (per-problem rates take few distinct values). Lists with many distinct values fall back to
    `rng.choices`."""

    MAX_DISTINCT = 24

    def __init__(self, values: Sequence[float]):
        if not values:
            raise ValueError("bootstrap: every seed needs at least one problem")
        self.values = list(values)
        self.n = len(values)
        counts: dict[float, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        self.distinct = sorted(counts)
        left = self.n
        self.cond_p = []  # P(value j | not one of the values before j)
        for v in self.distinct:
            self.cond_p.append(counts[v] / left if left else 0.0)
            left -= counts[v]
        self.tables: dict[tuple[int, int], list[float]] = {}
        self.fast = len(self.distinct) <= self.MAX_DISTINCT

    def _cdf(self, j: int, trials: int) -> list[float]:
        key = (j, trials)
        table = self.tables.get(key)
        if table is None:
            p = self.cond_p[j]
            if p <= 0.0:
                table = [1.0]
            elif p >= 1.0:
                table = [0.0] * trials + [1.0]
            else:  # binomial pmf from its mode outwards (one lgamma, then ratios), accumulated
                q, t = 1.0 - p, trials
                m = min(t, int((t + 1) * p))
                pmf = [0.0] * (t + 1)
                pmf[m] = math.exp(math.lgamma(t + 1) - math.lgamma(m + 1) - math.lgamma(t - m + 1)
                                  + m * math.log(p) + (t - m) * math.log1p(-p))
                v, r = pmf[m], p / q
                for k in range(m, t):
                    v *= (t - k) / (k + 1) * r
                    if v < 1e-300:
                        break
                    pmf[k + 1] = v
                v = pmf[m]
                for k in range(m, 0, -1):
                    v *= k / ((t - k + 1) * r)
                    if v < 1e-300:
                        break
                    pmf[k - 1] = v
                table = list(itertools.accumulate(pmf))
            self.tables[key] = table
        return table

    def draw_mean(self, rng: random.Random) -> float:
        if not self.fast:
            return sum(rng.choices(self.values, k=self.n)) / self.n
        left, total = self.n, 0.0
        last = len(self.distinct) - 1
        for j, v in enumerate(self.distinct):
            if left == 0:
                break
            if j == last:
                k = left
            else:
                table = self._cdf(j, left)
                k = min(bisect.bisect_right(table, rng.random()), left)
            total += k * v
            left -= k
        return total / self.n


def _percentile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of already sorted values."""
    pos = q * (len(sorted_vals) - 1)
    i = int(math.floor(pos))
    j = min(i + 1, len(sorted_vals) - 1)
    return sorted_vals[i] + (sorted_vals[j] - sorted_vals[i]) * (pos - i)


def hierarchical_bootstrap(groups: Sequence[Sequence[float]], *, other: Sequence[Sequence[float]] | None = None,
                           B: int = BOOT_B, seed: int = 0, level: float = BOOT_LEVEL) -> Interval:
    """Percentile interval of mean over seeds of (mean over problems) by a two-level bootstrap.

    `groups[i]` holds seed i's per-problem values (a problem's rate over its samples; for a
    paired difference, a − b on that problem). One resample draws len(groups) seeds with
    replacement, then, inside each drawn seed, its problems with replacement, and takes the mean
    over drawn seeds of each one's problem mean. With `other` (same seed order), the statistic
    is mean(groups) − mean(other): the seeds drawn are shared (paired by seed) and each side's
    problems are drawn independently (for problems that cannot be paired). Deterministic given
    `seed` (random.Random).
    """
    if not groups:
        raise ValueError("hierarchical_bootstrap needs at least one seed")
    if other is not None and len(other) != len(groups):
        raise ValueError(f"hierarchical_bootstrap: {len(groups)} seeds but {len(other)} in `other` (pairs by seed)")
    if B < 1 or not 0 < level < 1:
        raise ValueError(f"hierarchical_bootstrap needs B >= 1 and 0 < level < 1, got B={B}, level={level}")
    rng = random.Random(seed)
    sa = [_MeanSampler(g) for g in groups]
    sb = None if other is None else [_MeanSampler(g) for g in other]
    s = len(sa)

    def observed(samplers: list[_MeanSampler]) -> float:
        return sum(sum(x.values) / x.n for x in samplers) / s

    estimate = observed(sa) - (observed(sb) if sb is not None else 0.0)
    stats = []
    for _ in range(B):
        drawn = [rng.randrange(s) for _ in range(s)]
        stat = sum(sa[i].draw_mean(rng) for i in drawn) / s
        if sb is not None:
            stat -= sum(sb[i].draw_mean(rng) for i in drawn) / s
        stats.append(stat)
    stats.sort()
    alpha = 1.0 - level
    units = min(x.n for x in sa + (sb or []))
    return Interval(estimate=estimate, lo=_percentile(stats, alpha / 2), hi=_percentile(stats, 1 - alpha / 2),
                    level=level, B=B, n_seeds=s, n_units=units, paired_units=other is None)


# ---- Seeds needed to detect a difference --------------------------------------------------


def seeds_needed(diffs: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Seeds a two-sided paired test at `alpha` needs for `power` to detect the observed mean of
    `diffs`, given their observed SD (ddof=1): n = ((z_{1−α/2} + z_power)·σ/Δ)², rounded up (normal
    approximation), at least 2 (a paired test needs two pairs). None when Δ = 0: no difference
    was observed, so there is none to power."""
    if len(diffs) < 2:
        raise ValueError(f"seeds_needed needs at least two paired differences to estimate their spread, got {len(diffs)}")
    mean = sum(diffs) / len(diffs)
    if abs(mean) < 1e-12:
        return None
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    n = (z * sd / abs(mean)) ** 2
    return max(2, math.ceil(round(n, 9)))


__all__ = [
    "BOOT_B", "BOOT_LEVEL", "Confusion", "Interval", "PairedTest", "Z_95", "auroc", "average_ranks", "betainc",
    "f_beta", "hierarchical_bootstrap", "mean_sem", "paired_test", "seeds_needed", "sign_flip_p", "student_t_sf",
    "wilson_interval",
]
