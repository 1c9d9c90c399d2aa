"""Unit tests of guidance/ alone: the algebra of eq. 8 and eq. 9, schedules, windows and the planner."""

import math
from operator import attrgetter

import pytest
import torch
from pack import guidance

(EMPTY, SCHEDULES, GuidanceTerm, InvalidInput, Window, effective_uncond, eq8_terms, evaluation_range, guided,
 needs_empty, plan_call, standard_neg_scale, term_weight) = attrgetter(
    "EMPTY", "SCHEDULES", "GuidanceTerm", "InvalidInput", "Window", "effective_uncond", "eq8_terms",
    "evaluation_range", "guided", "needs_empty", "plan_call", "standard_neg_scale", "term_weight")(guidance)

SIGMAS = [14.6, 9.7, 6.0, 3.9, 2.4, 1.5, 0.9, 0.5, 0.25, 0.1, 0.0]  # a 10-step schedule, σ_N = 0


def no_percent(p):
    raise AssertionError("a steps window must not consult percent_to_sigma")


def linear_percent(p):
    """A stand-in for ComfyUI's percent_to_sigma: percent 0 → ∞-like, 1 → 0, linear in between."""
    return 999999999.9 if p <= 0 else 15.0 * (1.0 - p)


@pytest.fixture
def preds():
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(2, 4, 8, 8, generator=g) for k in ("positive", "negative", EMPTY)}


def coefficients(terms, sigma=SIGMAS[0]):
    return plan_call(terms, sigma, SIGMAS, linear_percent)


def test_eq8_with_standard_neg_scale_is_eq9_and_skips_u(preds):
    for cfg in (7.0, 7.3, 4.5, 12.0):
        plan = coefficients(eq8_terms(cfg, standard_neg_scale(cfg), Window()))
        assert EMPTY not in plan
        p, n = preds["positive"], preds["negative"]
        eq9 = n + (p - n) * cfg
        assert torch.equal(guided(preds, plan), eq9)  # eq. 9's own arithmetic, bit for bit


def test_eq8_formula(preds):
    plan = coefficients(eq8_terms(7.0, 3.0, Window()))
    assert plan == {"positive": 7.0, "negative": -3.0, EMPTY: -3.0}
    p, n, u = preds["positive"], preds["negative"], preds[EMPTY]
    expected = u + 7.0 * (p - u) - 3.0 * (n - u)
    torch.testing.assert_close(guided(preds, plan), expected, rtol=1e-6, atol=1e-5)


def test_several_negatives_are_summed_not_averaged(preds):
    terms = [GuidanceTerm("positive", 5.0), GuidanceTerm("negative", -2.0), GuidanceTerm("n2", -1.5)]
    preds = {**preds, "n2": preds["negative"] * 0.5}
    plan = coefficients(terms)
    assert plan["negative"] == -2.0 and plan["n2"] == -1.5 and plan[EMPTY] == pytest.approx(1 - 5 + 2 + 1.5)
    u = preds[EMPTY]
    expected = u + 5 * (preds["positive"] - u) - 2 * (preds["negative"] - u) - 1.5 * (preds["n2"] - u)
    torch.testing.assert_close(guided(preds, plan), expected, rtol=1e-6, atol=1e-5)


def test_effective_uncond_folds_eq8_into_stock_cfg(preds):
    plan = coefficients(eq8_terms(7.0, 3.0, Window()))
    u_bar = effective_uncond(preds, plan, "positive")
    torch.testing.assert_close(u_bar + (preds["positive"] - u_bar) * 7.0, guided(preds, plan), rtol=1e-5, atol=1e-4)


def test_effective_uncond_is_exactly_n_for_eq9_and_u_for_cfg(preds):
    eq9 = coefficients(eq8_terms(7.0, 6.0, Window()))
    assert effective_uncond(preds, eq9, "positive") is preds["negative"]
    cfg = coefficients(eq8_terms(7.0, 0.0, Window()))
    assert cfg == {"positive": 7.0, EMPTY: -6.0}
    assert effective_uncond(preds, cfg, "positive") is preds[EMPTY]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_rise_to_one_and_are_never_zero_inside(name):
    shape = SCHEDULES[name]
    values = [shape((k + 1) / 5) for k in range(5)]
    assert values[-1] == pytest.approx(1.0)
    assert all(v > 0 for v in values)
    assert values == sorted(values)


def test_linear_ramp_weights_over_the_window():
    term = GuidanceTerm("negative", -4.0, Window(0.2, 0.6), "linear")  # steps 2, 3, 4, 5 of 10
    weights = [term_weight(term, SIGMAS[i], SIGMAS, no_percent) for i in range(10)]
    assert weights == [0, 0, -1.0, -2.0, -3.0, -4.0, 0, 0, 0, 0]


def test_cosine_ramp():
    term = GuidanceTerm("negative", -2.0, Window(0.0, 0.2), "cosine")  # steps 0, 1
    assert term_weight(term, SIGMAS[0], SIGMAS, no_percent) == pytest.approx(-2.0 * 0.5)
    assert term_weight(term, SIGMAS[1], SIGMAS, no_percent) == pytest.approx(-2.0)


@pytest.mark.parametrize(
    "start, end, n, active",
    [
        (0.0, 1.0, 10, range(0, 10)),
        (0.1, 1.0, 50, range(5, 50)),  # Ban et al.: no negative for the first 5 of 50 steps
        (0.3, 0.7, 10, range(3, 7)),
        (0.25, 1.0, 4, range(1, 4)),
        (0.26, 0.49, 4, range(1, 1)),  # int(1.04) = 1, int(1.96) = 1: empty
        (0.0, 0.0, 10, range(0, 0)),
        (1.0, 1.0, 10, range(10, 10)),
    ],
)
def test_step_window_edges(start, end, n, active):
    sigmas = [float(n - i) for i in range(n)] + [0.0]
    window = Window(start, end)
    assert window.step_range(sigmas, no_percent) == active
    on = [i for i in range(n) if window.is_active(sigmas[i], sigmas, no_percent)]
    assert on == list(active)


def test_percent_window_is_comfyui_sigma_range():
    window = Window(0.5, 1.0, "percent")  # σ ≤ 7.5
    assert [window.is_active(s, SIGMAS, linear_percent) for s in (14.6, 7.5 + 1e-6, 7.5, 6.0, 0.1)] == [
        False, False, True, True, True,
    ]
    assert window.step_range(SIGMAS, linear_percent) == range(2, 10)


def test_outside_window_the_negative_is_dropped_and_cfg_stays_on_against_u():
    terms = eq8_terms(7.0, 3.0, Window(0.3, 1.0))
    assert coefficients(terms, SIGMAS[2]) == {"positive": 7.0, EMPTY: -6.0}
    assert coefficients(terms, SIGMAS[3]) == {"positive": 7.0, "negative": -3.0, EMPTY: -3.0}


def test_gated_eq9_evaluates_two_conds_everywhere():
    terms = eq8_terms(7.0, 6.0, Window(0.3, 1.0))
    assert list(coefficients(terms, SIGMAS[2])) == ["positive", EMPTY]
    assert list(coefficients(terms, SIGMAS[5])) == ["positive", "negative"]
    assert evaluation_range(terms) == (2, 2)


def test_cfg_0_outside_the_window_is_u_alone():
    """eq. 9 at cfg 0 is n; with the negative windowed out no term is on, so x̂ = u (it raised a TypeError)."""
    terms = eq8_terms(0.0, -1.0, Window(0.3, 1.0))
    assert coefficients(terms, SIGMAS[2]) == {EMPTY: 1.0}
    assert coefficients(terms, SIGMAS[5]) == {"negative": 1.0}


def test_zero_scale_is_never_evaluated():
    assert coefficients(eq8_terms(1.0, 0.0, Window())) == {"positive": 1.0}
    assert evaluation_range(eq8_terms(7.0, 0.0, Window())) == (2, 2)


def test_evaluation_range_and_needs_empty():
    assert evaluation_range(eq8_terms(7.0, 3.0, Window(0.2, 1.0))) == (2, 3)
    assert evaluation_range(eq8_terms(7.0, 6.0, Window())) == (2, 2)
    assert not needs_empty(eq8_terms(7.0, 6.0, Window()))
    assert needs_empty(eq8_terms(7.0, 6.0, Window(0.2, 1.0)))  # u stands in while the negative is off
    assert needs_empty(eq8_terms(7.0, 6.0, Window(), "linear"))  # inside a ramp c_u ≠ 0
    assert needs_empty(eq8_terms(7.0, 3.0, Window()))


@pytest.mark.parametrize("seed", range(40))
def test_every_planned_call_lies_in_the_evaluation_range(seed):
    """Brute force over the schedule: for random eq. 8 terms plus up to 8 extra terms (windows in steps and percent,
    every schedule, weights that may sum to 1), each call's conditionings, counted by plan_call, lie within the
    closed-form evaluation_range the node shows; with every window full and constant the range is exact."""
    import random

    rng = random.Random(seed)

    def window():
        start = rng.choice([0.0, 0.0, 0.1, 0.3, 0.5])
        return Window(start, rng.choice([1.0, 1.0, max(start, 0.8)]), rng.choice(["steps", "percent"]))

    cfg = rng.choice([1.0, 3.0, 7.0])
    terms = eq8_terms(cfg, rng.choice([0.0, cfg - 1.0, 4.0]), window(), rng.choice(list(SCHEDULES)))
    terms += [GuidanceTerm(f"term{i}", rng.choice([-2.0, 1.0, 0.5, 0.0]), window(), rng.choice(list(SCHEDULES)))
              for i in range(rng.randint(0, 8))]
    counts = [len(coefficients(terms, sigma)) for sigma in SIGMAS[:-1]]
    fewest, most = evaluation_range(terms)
    assert fewest <= min(counts) and max(counts) <= most, (counts, fewest, most)
    full = [GuidanceTerm(t.key, t.scale) for t in terms]
    assert {len(coefficients(full, sigma)) for sigma in SIGMAS[:-1]} == {evaluation_range(full)[0]}
    assert evaluation_range(full)[0] == evaluation_range(full)[1]


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: Window(0.7, 0.3), "start"),
        (lambda: Window(-0.1, 1.0), "start"),
        (lambda: Window(0.0, 1.5), "end"),
        (lambda: Window(math.nan, 1.0), "start"),
        (lambda: Window(0.0, 1.0, "sigma"), "unit"),
        (lambda: GuidanceTerm("negative", math.inf), "scale"),
        (lambda: GuidanceTerm("negative", 1.0, Window(), "square"), "schedule"),
        (lambda: eq8_terms(math.nan, 1.0, Window()), "cfg"),
        (lambda: eq8_terms(7.0, -math.inf, Window()), "neg_scale"),
    ],
)
def test_bad_settings_name_their_field(build, field):
    with pytest.raises(InvalidInput) as error:
        build()
    assert error.value.field == field
