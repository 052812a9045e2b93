"""Pure statistics against independent reference computations (closed forms, brute force)."""

import itertools
import math
import random

import pytest

from vgrout.stats import (
    Confusion, auroc, f_beta, mean_sem, paired_test, sign_flip_p, student_t_sf, wilson_interval,
)


def test_wilson_matches_textbook_value():
    # Wilson 95% for 8/10 (z = 1.96 rounded): worked by hand from
    # (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    lo, hi = wilson_interval(8, 10, z=1.96)
    p, n, z = 0.8, 10, 1.96
    center = (p + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(p * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (lo, hi) == pytest.approx((center - half, center + half), abs=1e-12)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # published table value


def test_wilson_edges_are_nondegenerate_and_bad_input_raises():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2  # Wald would give [0, 0]
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 0.9
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="k <= n"):
        wilson_interval(5, 4)


def _auroc_brute(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_matches_pairwise_count_with_ties():
    scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.0]
    labels = [False, True, False, True, False, True, True, False]
    # by hand: positives {0.4, 0.8, 0.4, 0.9} vs negatives {0.1, 0.35, 0.4, 0.0}:
    # 0.4 beats 3 and ties 1 (3.5) twice, 0.8 and 0.9 beat all 4 → (3.5+3.5+4+4)/16
    assert auroc(scores, labels) == pytest.approx(15 / 16)
    rng = random.Random(0)
    for _ in range(20):
        s = [rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in range(15)]
        y = [rng.random() < 0.4 for _ in range(15)]
        if any(y) and not all(y):
            assert auroc(s, y) == pytest.approx(_auroc_brute(s, y))


def test_auroc_undefined_with_one_class_and_rejects_nan():
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, float("nan")], [True, False])


def test_f_half_and_confusion_by_hand():
    flagged = [True, True, True, False, False, False, True]
    hack = [True, True, False, True, False, False, False]
    c = Confusion.of(flagged, hack)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 2, 1, 2)
    assert c.precision == pytest.approx(0.5) and c.recall == pytest.approx(2 / 3)
    p, r = 0.5, 2 / 3
    assert c.f_beta(0.5) == pytest.approx(1.25 * p * r / (0.25 * p + r))  # harmonic-style form
    assert f_beta(3, 1, 2, beta=1.0) == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert f_beta(0, 0, 4) == 0.0  # nothing flagged, positives exist: F = 0
    assert math.isnan(Confusion.of([False], [False]).precision)


def test_student_t_tail_matches_closed_forms():
    for t in (-3.0, -0.7, 0.0, 0.4, 1.3, 2.5, 9.0):
        assert student_t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-12)
        assert student_t_sf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
        u = t / math.sqrt(3)
        cdf3 = 0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi
        assert student_t_sf(t, 3) == pytest.approx(1 - cdf3, abs=1e-12)
    assert student_t_sf(1.959964, 10_000) == pytest.approx(0.025, abs=1e-4)  # → normal


def test_paired_test_by_hand_and_sign_flip():
    a, b = [0.9, 0.8, 1.0], [0.5, 0.6, 0.5]
    res = paired_test(a, b)
    d = [0.4, 0.2, 0.5]
    m = sum(d) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / 2)
    t = m / (sd / math.sqrt(3))
    assert res.mean == pytest.approx(m) and res.t == pytest.approx(t) and res.df == 2
    assert res.p == pytest.approx(2 * (0.5 - t / (2 * math.sqrt(2 + t * t))))
    assert res.signs == "+++"
    assert res.p_sign_flip == pytest.approx(0.25)  # 2 of 8 sign patterns reach |sum|
    flat = paired_test([0.3, 0.3], [0.3, 0.3])
    assert math.isnan(flat.p) and flat.signs == "00"
    with pytest.raises(ValueError, match="pairs by seed"):
        paired_test([1.0], [1.0, 2.0])


def test_sign_flip_matches_enumeration():
    d = [0.3, -0.1, 0.2, 0.05]
    obs = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(sg, d))) >= obs - 1e-12
               for sg in itertools.product((1, -1), repeat=4))
    assert sign_flip_p(d) == hits / 16


def test_mean_sem():
    m, s, n = mean_sem([1.0, 2.0, 3.0, 6.0])
    assert (m, n) == (3.0, 4) and s == pytest.approx(math.sqrt(14 / 3 / 4))
    assert math.isnan(mean_sem([1.0])[1])


# ---- hierarchical bootstrap and seeds needed --------------------------------------------


def _naive_bootstrap(groups, B, seed, level=0.95):
    """Reference: resample seeds, then each drawn seed's problems, with `random.choices` one by one."""
    rng = random.Random(seed)
    stats = []
    for _ in range(B):
        drawn = [rng.randrange(len(groups)) for _ in groups]
        stats.append(sum(sum(rng.choices(groups[i], k=len(groups[i]))) / len(groups[i]) for i in drawn) / len(groups))
    stats.sort()
    return stats


def test_bootstrap_is_deterministic_and_matches_naive_resampling():
    from vgrout.stats import hierarchical_bootstrap

    rng = random.Random(3)
    groups = [[float(rng.random() < p) for _ in range(60)] for p in (0.2, 0.3, 0.25, 0.35)]
    a = hierarchical_bootstrap(groups, B=2000, seed=7)
    assert a == hierarchical_bootstrap(groups, B=2000, seed=7)  # same seed, same interval
    assert a != hierarchical_bootstrap(groups, B=2000, seed=8)
    assert a.estimate == pytest.approx(sum(sum(g) / 60 for g in groups) / 4)
    assert a.n_seeds == 4 and a.n_units == 60 and a.lo < a.estimate < a.hi
    # the multinomial shortcut draws the same distribution as resampling one value at a time
    ref = _naive_bootstrap(groups, 4000, seed=1)
    lo, hi = ref[int(0.025 * 3999)], ref[int(0.975 * 3999)]
    assert a.lo == pytest.approx(lo, abs=0.012) and a.hi == pytest.approx(hi, abs=0.012)
    # values with more distinct levels (a difference of per-problem means) and the fallback path agree too
    diffs = [[rng.choice([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0]) for _ in range(50)] for _ in range(3)]
    many = [[rng.random() for _ in range(50)] for _ in range(3)]  # > MAX_DISTINCT values: rng.choices path
    for g in (diffs, many):
        iv, ref = hierarchical_bootstrap(g, B=3000, seed=2), _naive_bootstrap(g, 3000, seed=5)
        assert iv.lo == pytest.approx(ref[int(0.025 * 2999)], abs=0.03)
        assert iv.hi == pytest.approx(ref[int(0.975 * 2999)], abs=0.03)


def test_bootstrap_interval_covers_the_true_difference():
    """Synthetic arms with known rates: each seed shifts both arms' hack probability (seed effect), each
    problem has its own difficulty shared by the arms (paired by problem). The 95% interval of a − b
    covers the true difference in most replications and is narrower when paired by problem."""
    from vgrout.stats import hierarchical_bootstrap

    true_a, true_b, n_seeds, n_problems = 0.30, 0.40, 5, 80
    covered, narrower = 0, 0
    for rep in range(40):
        rng = random.Random(rep)
        diffs, ga, gb = [], [], []
        for _ in range(n_seeds):
            shift = rng.gauss(0.0, 0.02)
            ease = [rng.gauss(0.0, 0.25) for _ in range(n_problems)]  # problem effect, shared by both arms
            xa = [float(rng.random() < min(1, max(0, true_a + shift + e))) for e in ease]
            xb = [float(rng.random() < min(1, max(0, true_b + shift + e))) for e in ease]
            diffs.append([x - y for x, y in zip(xa, xb)])
            ga.append(xa)
            gb.append(xb)
        iv = hierarchical_bootstrap(diffs, B=400, seed=rep)
        unpaired = hierarchical_bootstrap(ga, other=gb, B=400, seed=rep)
        assert not unpaired.paired_units and unpaired.estimate == pytest.approx(iv.estimate)
        covered += iv.covers(true_a - true_b)
        narrower += iv.width < unpaired.width
    assert covered >= 34  # 95% nominal: 38 of 40 expected, 34 is three binomial SDs below
    assert narrower >= 32  # pairing by problem removes the shared problem effect


def test_interval_verdict_helpers():
    from vgrout.stats import Interval

    iv = Interval(estimate=-0.01, lo=-0.04, hi=0.03, level=0.95, B=10, n_seeds=3, n_units=40)
    assert iv.inside(0.05) and not iv.excludes_zero() and iv.covers(0.0) and iv.width == pytest.approx(0.07)
    wide = Interval(estimate=-0.01, lo=-0.08, hi=0.03, level=0.95, B=10, n_seeds=3, n_units=40)
    assert not wide.inside(0.05) and wide.inside(0.08)
    assert Interval(estimate=-0.1, lo=-0.2, hi=-0.01, level=0.95, B=10, n_seeds=3, n_units=40).excludes_zero()


def test_seeds_needed_by_hand():
    from vgrout.stats import seeds_needed

    z = 1.959964 + 0.841621  # z_0.975 + z_0.8, from a normal table
    # diffs 0.1, -0.05, 0.2, 0: mean 0.0625; squared deviations sum to 0.036875, sd = sqrt(0.036875 / 3)
    sd = math.sqrt(0.036875 / 3)
    assert (z * sd / 0.0625) ** 2 == pytest.approx(24.70, abs=0.01)
    assert seeds_needed([0.1, -0.05, 0.2, 0.0]) == 25
    # diffs -0.15, 0, -0.25, 0: mean -0.1, sd = sqrt(0.045 / 3) -> n = 11.77 -> 12
    assert seeds_needed([-0.15, 0.0, -0.25, 0.0]) == 12
    assert seeds_needed([-0.5, -0.5, -0.5]) == 2  # no spread: a paired test still takes two seeds
    assert seeds_needed([0.1, -0.1, 0.0]) is None  # Δ = 0: nothing to power
    assert seeds_needed([0.1, -0.05, 0.2, 0.0], power=0.9) > 25  # more power, more seeds
    with pytest.raises(ValueError, match="at least two"):
        seeds_needed([0.3])
