r"""Real-option value of buying bidirectional charging capability now rather than later.

A fleet buying chargers today can pay a premium for bidirectional ports now, or buy
unidirectional ports and keep the choice open: if a program that pays for export arrives later,
retrofit (or replace) the ports then, usually at a higher cost. Buying now is itself the purchase
of an option — to activate V2G cheaply once a program pays — so the question is which of two
options is worth more (market-and-v2g-economics.md §4.4; Dixit & Pindyck [3]_, ch. 5).

Model (one port, shared by both methods)
----------------------------------------
* Decisions at dates :math:`t_k = kΔ`, Δ = 1/``decisions_per_year``, k = 0 … n−1, over the
  charger life T = nΔ years. At T the ports are replaced and both paths converge, so nothing
  after T is valued.
* **Arrival.** A paying program exists from t = 0 if ``program_available_now``; otherwise it
  arrives in each decision interval with probability :math:`h = 1 - (1 - p)^{Δ}` (a constant
  annual hazard p, independent of everything else) and stays until T.
* **Value.** :math:`V_t` [$/yr per port] is the net annual value V2G would earn if the program
  ran at t (payments − degradation − losses, e.g. :class:`fleetcharge.v2g.economics.AnnualValue`
  per port). It follows a geometric Brownian motion with expected growth g and volatility σ,
  :math:`E[V_{t+Δ} | V_t] = V_t (1+g)^{Δ}`, whether or not the program has arrived.
* **Payoff of activating** at :math:`t_k` with value :math:`V`: payments :math:`V_{t_j} Δ` at the
  end of each remaining interval, discounted at the firm's rate r, so (expected, given V)
  :math:`Π_k(V) = V a_k - K` with :math:`a_k = \sum_{j=0}^{n-k-1} Δ (1+g)^{jΔ} (1+r)^{-(j+1)Δ}`.
  With Δ = 1 this is the end-of-year convention of :func:`fleetcharge.v2g.economics.npv`.
* **Buy now**: pay ``premium_now_usd`` at t = 0 and hold the option to activate for
  K = ``activation_usd`` (commissioning, interconnection) at any decision date after arrival.
  **Wait and decide**: hold the option to retrofit and activate for
  K = ``premium_later_usd + activation_usd`` at any decision date after arrival.
  Both are Bermudan options to invest on the state (arrived, V), valued by dynamic programming
  with real-world drift g and discount rate r (Dixit & Pindyck ch. 4); for risk-neutral
  (contingent-claims) valuation pass the risk-adjusted drift as ``growth_rate`` and the risk-free
  rate as ``discount_rate``.
* **Option value of buying now** = value(buy now) − value(wait and decide). Negative means wait.
  The break-even premium is value(activation option) − value(retrofit option).

Methods: a recombining Cox–Ross–Rubinstein lattice [1]_ refined between decision dates
(:func:`binomial_lattice`) and Longstaff–Schwartz least-squares Monte Carlo [2]_
(:func:`longstaff_schwartz`) on exactly the same decision dates and payoffs; :func:`cross_check`
compares them.

References
----------
.. [1] J. C. Cox, S. A. Ross and M. Rubinstein, "Option pricing: A simplified approach",
   Journal of Financial Economics 7(3), 229–263, 1979. :doi:`10.1016/0304-405X(79)90015-1`
.. [2] F. A. Longstaff and E. S. Schwartz, "Valuing American options by simulation: A simple
   least-squares approach", Review of Financial Studies 14(1), 113–147, 2001.
   :doi:`10.1093/rfs/14.1.113`
.. [3] A. K. Dixit and R. S. Pindyck, *Investment under Uncertainty*, Princeton University Press,
   1994.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr

LSMC_DEFAULT_SEED = 2001
"""Default seed of :func:`longstaff_schwartz` (results are reproducible)."""


@dataclass(frozen=True)
class OptionCase:
    """Inputs of the bidirectional-premium option model, per port.

    Parameters
    ----------
    annual_value_usd : float
        Net annual V2G value V₀ if a paying program ran today [$/yr per port], > 0.
    volatility : float
        Volatility σ of ln V [1/√yr], ≥ 0.
    arrival_probability_per_year : float
        Probability p that a paying program arrives in a given year [1/yr], 0–1.
    premium_now_usd : float
        Bidirectional premium if bought with the chargers now [$/port], ≥ 0.
    premium_later_usd : float
        Cost of retrofitting or replacing the port later [$/port], ≥ 0.
    discount_rate : float, default 0.06
        Firm's discount rate r [1/yr].
    growth_rate : float, default 0
        Expected growth g of V [1/yr].
    life_years : int, default 12
        Charger life T [yr].
    activation_usd : float, default 0
        One-off cost of starting V2G once a program exists, paid on both paths [$/port], ≥ 0.
    program_available_now : bool, default False
        True if a paying program already exists at t = 0.
    decisions_per_year : int, default 1
        Decision dates per year (1 = annual budget decisions).
    """

    annual_value_usd: float
    volatility: float
    arrival_probability_per_year: float
    premium_now_usd: float
    premium_later_usd: float
    discount_rate: float = 0.06
    growth_rate: float = 0.0
    life_years: int = 12
    activation_usd: float = 0.0
    program_available_now: bool = False
    decisions_per_year: int = 1

    def __post_init__(self) -> None:
        checks = {
            "annual_value_usd": self.annual_value_usd > 0,
            "volatility": self.volatility >= 0,
            "arrival_probability_per_year": 0 <= self.arrival_probability_per_year <= 1,
            "premium_now_usd": self.premium_now_usd >= 0,
            "premium_later_usd": self.premium_later_usd >= 0,
            "activation_usd": self.activation_usd >= 0,
            "discount_rate": self.discount_rate > -1,
            "growth_rate": self.growth_rate > -1,
            "life_years": int(self.life_years) == self.life_years and self.life_years >= 1,
            "decisions_per_year": (
                int(self.decisions_per_year) == self.decisions_per_year
                and self.decisions_per_year >= 1
            ),
        }
        bad = [
            name
            for name, ok in checks.items()
            if not (ok and np.isfinite(float(getattr(self, name))))
        ]
        if bad:
            shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(
                f"OptionCase out of range: {shown} (values must be finite; amounts ≥ 0, "
                "annual_value_usd > 0, probabilities in [0, 1], rates as fractions > −1, "
                "life_years and decisions_per_year whole ≥ 1)"
            )

    @property
    def step_years(self) -> float:
        """Δ, years between decision dates [yr]."""
        return 1.0 / self.decisions_per_year

    @property
    def n_decisions(self) -> int:
        """n, decision dates over the life (t = 0 … T − Δ)."""
        return int(self.life_years) * int(self.decisions_per_year)

    @property
    def arrival_probability_per_step(self) -> float:
        """h = 1 − (1 − p)^Δ, arrival probability per decision interval."""
        return 1.0 - (1.0 - self.arrival_probability_per_year) ** self.step_years


@dataclass(frozen=True)
class OptionValue:
    """Values of buying bidirectional now vs waiting, per port [$].

    Attributes
    ----------
    method : str
        ``"binomial lattice (CRR)"`` or ``"least-squares Monte Carlo"``.
    value_buy_now_usd : float
        −premium_now + value of the option to activate [$].
    value_wait_usd : float
        Value of wait-and-decide: the option to retrofit and activate later, ≥ 0 [$].
    option_value_of_buying_now_usd : float
        ``value_buy_now_usd − value_wait_usd`` [$]; negative means wait.
    max_premium_now_usd : float
        Break-even ``premium_now_usd`` (buying now is right below it) [$].
    static_npv_buy_now_usd : float
        NPV of buying now and activating as soon as a program arrives, with no timing
        flexibility (closed form) [$].
    standard_error_usd : float or None
        Standard error of ``option_value_of_buying_now_usd`` (LSMC, paired paths) [$].
    standard_error_buy_now_usd, standard_error_wait_usd : float or None
        Standard errors of the two values (LSMC) [$].
    decision : {"buy now", "wait"}
        The recommendation.
    interpretation : str
        A plain-language summary.
    """

    method: str
    value_buy_now_usd: float
    value_wait_usd: float
    option_value_of_buying_now_usd: float
    max_premium_now_usd: float
    static_npv_buy_now_usd: float
    standard_error_usd: float | None
    standard_error_buy_now_usd: float | None
    standard_error_wait_usd: float | None
    decision: Literal["buy now", "wait"]
    interpretation: str


@dataclass(frozen=True)
class CrossCheck:
    """Lattice against LSMC on the same :class:`OptionCase`.

    Attributes
    ----------
    lattice, lsmc : OptionValue
        The two valuations.
    max_difference_usd : float
        Largest |LSMC − lattice| over value(buy now), value(wait) and their difference [$].
    tolerance_usd : float
        Allowed difference: 3 LSMC standard errors + 1 % of the larger of the lattice values
        (the 1 % covers the lattice's discretisation and LSMC's sub-optimal exercise bias) [$].
    agree : bool
        ``max_difference_usd ≤ tolerance_usd`` for each of the three quantities.
    """

    lattice: OptionValue
    lsmc: OptionValue
    max_difference_usd: float
    tolerance_usd: float
    agree: bool


def activation_factor(case: OptionCase) -> np.ndarray:
    r"""Present value at :math:`t_k` of the remaining program payments per $1/yr of V [yr].

    Parameters
    ----------
    case : OptionCase
        The model inputs.

    Returns
    -------
    numpy.ndarray
        :math:`a_k = \sum_{j=0}^{n-k-1} Δ (1+g)^{jΔ} (1+r)^{-(j+1)Δ}` for k = 0 … n (a_n = 0).
    """
    dt = case.step_years
    j = np.arange(case.n_decisions, dtype=float)
    terms = dt * (1.0 + case.growth_rate) ** (j * dt) / (1.0 + case.discount_rate) ** ((j + 1) * dt)
    return np.append(np.cumsum(terms)[::-1], 0.0)  # a_k sums the first n − k terms


def static_npv_buy_now_usd(case: OptionCase) -> float:
    r"""NPV of buying now and activating as soon as a program arrives (no flexibility) [$].

    Parameters
    ----------
    case : OptionCase
        The model inputs.

    Returns
    -------
    float
        :math:`-P_{now} + \sum_{k<n} P(\text{first at } t_k)\,(1+r)^{-t_k}
        \left(V_0 (1+g)^{t_k} a_k - K_{act}\right)` [$].
    """
    k = np.arange(case.n_decisions)
    h = case.arrival_probability_per_step
    if case.program_available_now:
        first = (k == 0).astype(float)
    else:
        first = np.where(k >= 1, (1.0 - h) ** np.maximum(k - 1, 0) * h, 0.0)
    t = k * case.step_years
    payoff = case.annual_value_usd * (1 + case.growth_rate) ** t * activation_factor(case)[k]
    discounted = first * (1 + case.discount_rate) ** (-t) * (payoff - case.activation_usd)
    return float(discounted.sum() - case.premium_now_usd)


def binomial_lattice(case: OptionCase, steps_per_decision: int = 50) -> OptionValue:
    r"""Value buying bidirectional now vs waiting on a Cox–Ross–Rubinstein lattice.

    Parameters
    ----------
    case : OptionCase
        The model inputs (see the module docstring for the model).
    steps_per_decision : int, default 50
        Lattice steps between decision dates; exercise is only allowed at decision dates, the
        extra steps refine the lognormal distribution of V.

    Returns
    -------
    OptionValue
        Standard errors are ``None``.

    Notes
    -----
    With δ = Δ / ``steps_per_decision``: :math:`u = e^{σ\sqrt{δ}}`, :math:`d = 1/u` and the
    probability of an up move :math:`q = ((1+g)^{δ} - d)/(u - d)` matches the expected growth
    (Cox, Ross & Rubinstein 1979; with σ = 0 the lattice is the deterministic path
    :math:`u = d = (1+g)^{δ}`). Two value arrays are rolled back together: :math:`F^A` (program
    arrived) and :math:`F^N` (not yet). At each decision date :math:`t_k`,
    :math:`F^A \leftarrow \max(F^A, V a_k - K)`; rolling back across a decision date mixes in the
    arrival revealed there, :math:`F^N \leftarrow h F^A + (1-h) F^N`. Each roll-back step is
    :math:`F_i(j) = (1+r)^{-δ} (q F_{i+1}(j+1) + (1-q) F_{i+1}(j))`. The value is
    :math:`F^A_0` if the program exists now, else :math:`F^N_0`.

    With ``steps_per_decision=1`` (an annual tree) this reproduces the toy numbers of the
    reference notes (market-and-v2g-economics.md §4.4: A₀ = $300/yr, σ = 0.5, K = $3,000 →
    $522), but one step a year misprices the lognormal tail: at σ = 0.6 the retrofit option
    moves by ≈ 10 % between 1 and 50 steps a year, hence the default of 50.
    """
    if int(steps_per_decision) != steps_per_decision or steps_per_decision < 1:
        raise ValueError(f"steps_per_decision must be a whole number ≥ 1, got {steps_per_decision}")
    activate = _lattice_option_usd(case, case.activation_usd, int(steps_per_decision))
    retrofit = _lattice_option_usd(
        case, case.premium_later_usd + case.activation_usd, int(steps_per_decision)
    )
    return _result(case, "binomial lattice (CRR)", activate, retrofit, None)


def longstaff_schwartz(
    case: OptionCase,
    n_paths: int = 20_000,
    seed: int = LSMC_DEFAULT_SEED,
    degree: int = 3,
) -> OptionValue:
    r"""Value buying bidirectional now vs waiting by least-squares Monte Carlo.

    Parameters
    ----------
    case : OptionCase
        The model inputs (see the module docstring for the model).
    n_paths : int, default 20000
        Paths in each of the two sets (fitting and valuation); even (antithetic pairs).
    seed : int, default 2001
        Seed of :func:`numpy.random.default_rng`.
    degree : int, default 3
        Degree of the polynomial basis in standardised V.

    Returns
    -------
    OptionValue
        With standard errors from the antithetic pair means of the valuation set.

    Notes
    -----
    V is simulated exactly at the decision dates,
    :math:`\ln V_{k+1} = \ln V_k + (\ln(1+g) - σ^2/2)Δ + σ\sqrt{Δ} Z` with antithetic Z, and
    the first arrival date is geometric with parameter h (shared by a pair). Exercise policy
    (Longstaff & Schwartz 2001): backwards over dates, on the paths where the
    program has arrived and :math:`Π_k(V) > 0`, regress the discounted realised cash flow of the
    current policy on :math:`1, z, …, z^{degree}`, :math:`z = (V - \bar V)/s_V`, and exercise
    where :math:`Π_k(V)` ≥ the fitted continuation value (at t = 0, where V is the same on all
    paths, the continuation value is the sample mean). The policy is fitted on one set of paths
    and applied to an independent set, so the estimate is a lower bound up to Monte Carlo error
    (no look-ahead bias). Both options use the same paths, so their difference has a small,
    paired standard error. Variance is reduced with a control variate: the payoff of exercising
    at arrival when in the money, whose mean is known in closed form (Black's formula for the
    lognormal V at each arrival date); standard errors are of the controlled estimates.
    """
    if int(n_paths) != n_paths or n_paths < 100 or n_paths % 2:
        raise ValueError(f"n_paths must be an even whole number ≥ 100, got {n_paths}")
    if int(degree) != degree or not 1 <= degree <= 6:
        raise ValueError(f"degree must be a whole number in 1–6, got {degree}")
    rng = np.random.default_rng(seed)
    fit_v, fit_arrival = _simulate(case, int(n_paths), rng)
    val_v, val_arrival = _simulate(case, int(n_paths), rng)
    strikes = (case.activation_usd, case.premium_later_usd + case.activation_usd)
    payoffs = []
    for strike in strikes:
        policy = _fit_policy(case, fit_v, fit_arrival, strike, int(degree))
        payoffs.append(_apply_policy(case, val_v, val_arrival, strike, policy))
    activate, retrofit = (
        _control_variate(
            y,
            _arrival_payoff_usd(case, val_v, val_arrival, strike),
            _arrival_payoff_mean_usd(case, strike),
        )
        for y, strike in zip(payoffs, strikes, strict=True)
    )
    errors = (_pair_se(activate - retrofit), _pair_se(activate), _pair_se(retrofit))
    return _result(
        case, "least-squares Monte Carlo", float(activate.mean()), float(retrofit.mean()), errors
    )


def option_value(
    case: OptionCase, method: Literal["lattice", "lsmc"] = "lattice", **kwargs: int
) -> OptionValue:
    """Value buying bidirectional now vs waiting with the named method.

    Parameters
    ----------
    case : OptionCase
        The model inputs.
    method : {"lattice", "lsmc"}, default "lattice"
        :func:`binomial_lattice` or :func:`longstaff_schwartz` (case-insensitive).
    **kwargs
        Passed to the method.

    Returns
    -------
    OptionValue
    """
    name = method.lower()
    if name == "lattice":
        return binomial_lattice(case, **kwargs)
    if name == "lsmc":
        return longstaff_schwartz(case, **kwargs)
    raise ValueError(f"unknown option-valuation method {method!r}; use 'lattice' or 'lsmc'")


def cross_check(
    case: OptionCase,
    steps_per_decision: int = 50,
    n_paths: int = 20_000,
    seed: int = LSMC_DEFAULT_SEED,
) -> CrossCheck:
    """Value ``case`` with both methods and test that they agree.

    Parameters
    ----------
    case : OptionCase
        The model inputs.
    steps_per_decision : int, default 50
        Passed to :func:`binomial_lattice`.
    n_paths, seed : int
        Passed to :func:`longstaff_schwartz`.

    Returns
    -------
    CrossCheck
        Agreement means, for value(buy now), value(wait) and their difference each,
        |LSMC − lattice| ≤ 3 × (LSMC standard error) + 1 % × max(|lattice values|).
    """
    lattice = binomial_lattice(case, steps_per_decision)
    lsmc = longstaff_schwartz(case, n_paths, seed)
    scale = max(abs(lattice.value_buy_now_usd), abs(lattice.value_wait_usd))
    pairs = (
        (lattice.value_buy_now_usd, lsmc.value_buy_now_usd, lsmc.standard_error_buy_now_usd),
        (lattice.value_wait_usd, lsmc.value_wait_usd, lsmc.standard_error_wait_usd),
        (
            lattice.option_value_of_buying_now_usd,
            lsmc.option_value_of_buying_now_usd,
            lsmc.standard_error_usd,
        ),
    )
    gaps = [abs(b - a) for a, b, _ in pairs]
    limits = [3.0 * (se or 0.0) + 0.01 * scale for _, _, se in pairs]
    agree = all(g <= lim for g, lim in zip(gaps, limits, strict=True))
    worst = int(np.argmax(np.subtract(gaps, limits)))
    return CrossCheck(lattice, lsmc, max(gaps), limits[worst], agree)


def _crr_parameters(volatility: float, growth_rate: float, dt_years: float) -> tuple[float, ...]:
    """(u, d, q) of a CRR step matching E[V_{t+δ}] = V_t (1+g)^δ (Cox–Ross–Rubinstein 1979)."""
    growth = (1.0 + growth_rate) ** dt_years
    if volatility == 0:
        return growth, growth, 0.5
    up = float(np.exp(volatility * np.sqrt(dt_years)))
    down = 1.0 / up
    q = (growth - down) / (up - down)
    if not 0 <= q <= 1:
        raise ValueError(
            f"lattice step too coarse for growth {growth_rate:g} at volatility {volatility:g}: "
            f"up-probability {q:.3f} is outside [0, 1]; raise steps_per_decision"
        )
    return up, down, q


def _lattice_option_usd(case: OptionCase, strike_usd: float, steps_per_decision: int) -> float:
    m = steps_per_decision
    n = case.n_decisions * m
    up, down, q = _crr_parameters(case.volatility, case.growth_rate, case.step_years / m)
    disc = (1.0 + case.discount_rate) ** (-case.step_years / m)
    h = case.arrival_probability_per_step
    factor = activation_factor(case)
    arrived = np.zeros(n + 1)  # at T nothing is left to earn: both values are 0
    waiting = np.zeros(n + 1)
    for i in range(n - 1, -1, -1):
        if (i + 1) % m == 0:  # arrival is revealed at the decision date i + 1
            waiting = h * arrived + (1.0 - h) * waiting
        arrived = disc * (q * arrived[1:] + (1.0 - q) * arrived[:-1])
        waiting = disc * (q * waiting[1:] + (1.0 - q) * waiting[:-1])
        if i % m == 0:
            ups = np.arange(i + 1)
            value = case.annual_value_usd * up**ups * down ** (i - ups)
            arrived = np.maximum(arrived, value * factor[i // m] - strike_usd)
    return float(arrived[0] if case.program_available_now else waiting[0])


def _simulate(
    case: OptionCase, n_paths: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """V at decision dates 0 … n−1 (antithetic halves) and the first decision date available."""
    half = n_paths // 2
    dt = case.step_years
    z = rng.standard_normal((half, case.n_decisions - 1))
    z = np.concatenate([z, -z])
    steps = (np.log1p(case.growth_rate) - 0.5 * case.volatility**2) * dt
    steps = steps + case.volatility * np.sqrt(dt) * z
    log_v = np.log(case.annual_value_usd) + np.cumsum(steps, axis=1)
    v = np.exp(np.concatenate([np.full((n_paths, 1), np.log(case.annual_value_usd)), log_v], 1))
    h = case.arrival_probability_per_step
    if case.program_available_now:
        first = np.zeros(half, dtype=np.int64)
    elif h > 0:
        first = rng.geometric(h, size=half)
    else:
        first = np.full(half, case.n_decisions, dtype=np.int64)
    return v, np.concatenate([first, first])


@dataclass(frozen=True)
class _Rule:
    """Exercise rule at one decision date: continuation value as a polynomial in standardised V."""

    center: float
    scale: float
    coefficients: np.ndarray

    def continuation_usd(self, value: np.ndarray) -> np.ndarray:
        z = (value - self.center) / self.scale
        return np.vander(z, len(self.coefficients), increasing=True) @ self.coefficients


def _fit_policy(
    case: OptionCase, v: np.ndarray, first: np.ndarray, strike_usd: float, degree: int
) -> list[_Rule | None]:
    factor = activation_factor(case)
    disc = (1.0 + case.discount_rate) ** (-case.step_years)
    cash = np.zeros(v.shape[0])  # value at date k of the policy fitted for dates > k
    rules: list[_Rule | None] = [None] * case.n_decisions
    for k in range(case.n_decisions - 1, -1, -1):
        cash *= disc
        exercise = v[:, k] * factor[k] - strike_usd
        live = np.flatnonzero((first <= k) & (exercise > 0))
        if live.size == 0:
            continue
        x = v[live, k]
        scale = float(x.std())
        if live.size > 4 * (degree + 1) and scale > 1e-12 * float(np.abs(x).mean()):
            basis = np.vander((x - x.mean()) / scale, degree + 1, increasing=True)
            coefficients = np.linalg.lstsq(basis, cash[live], rcond=None)[0]
            rule = _Rule(float(x.mean()), scale, coefficients)
        else:  # V is (nearly) the same on every path, e.g. at t = 0: use the sample mean
            rule = _Rule(0.0, 1.0, np.array([cash[live].mean()]))
        rules[k] = rule
        now = live[exercise[live] >= rule.continuation_usd(x)]
        cash[now] = exercise[now]
    return rules


def _apply_policy(
    case: OptionCase, v: np.ndarray, first: np.ndarray, strike_usd: float, rules: list[_Rule | None]
) -> np.ndarray:
    """Discounted payoff per path of following ``rules`` (first exercise date wins)."""
    factor = activation_factor(case)
    disc = (1.0 + case.discount_rate) ** (-case.step_years)
    payoff = np.zeros(v.shape[0])
    done = np.zeros(v.shape[0], dtype=bool)
    for k, rule in enumerate(rules):
        if rule is None:
            continue
        exercise = v[:, k] * factor[k] - strike_usd
        now = ~done & (first <= k) & (exercise > 0)
        now[now] = exercise[now] >= rule.continuation_usd(v[now, k])
        payoff[now] = exercise[now] * disc**k
        done |= now
    return payoff


def _arrival_payoff_usd(
    case: OptionCase, v: np.ndarray, first: np.ndarray, strike_usd: float
) -> np.ndarray:
    """Discounted payoff per path of exercising at arrival if in the money (a control variate)."""
    factor = activation_factor(case)
    disc = (1.0 + case.discount_rate) ** (-case.step_years)
    live = first < case.n_decisions
    k = np.minimum(first, case.n_decisions - 1)
    value = np.maximum(v[np.arange(v.shape[0]), k] * factor[k] - strike_usd, 0.0)
    return np.where(live, value * disc**k, 0.0)


def _arrival_payoff_mean_usd(case: OptionCase, strike_usd: float) -> float:
    r"""Closed-form mean of :func:`_arrival_payoff_usd`.

    Given arrival at :math:`t_k`, :math:`E[(V_k a_k - K)^+] = a_k (F N(d_1) - (K/a_k) N(d_2))`
    with forward :math:`F = V_0 (1+g)^{t_k}` and :math:`σ\sqrt{t_k}` (the Black formula), weighted
    by the probability and discount factor of first arrival at :math:`t_k`.
    """
    k = np.arange(case.n_decisions)
    h = case.arrival_probability_per_step
    if case.program_available_now:
        first = (k == 0).astype(float)
    else:
        first = np.where(k >= 1, (1.0 - h) ** np.maximum(k - 1, 0) * h, 0.0)
    t = k * case.step_years
    factor = activation_factor(case)[k]
    forward = case.annual_value_usd * (1.0 + case.growth_rate) ** t * factor
    spread = case.volatility * np.sqrt(t)
    intrinsic = np.maximum(forward - strike_usd, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(forward / strike_usd) + 0.5 * spread**2) / spread
        black = forward * ndtr(d1) - strike_usd * ndtr(d1 - spread)
    expected = np.where((spread > 0) & (strike_usd > 0), black, intrinsic)
    expected = np.where(factor > 0, expected, 0.0)
    return float(np.sum(first * (1.0 + case.discount_rate) ** (-t) * expected))


def _pair_means(x: np.ndarray) -> np.ndarray:
    half = x.shape[0] // 2
    return 0.5 * (x[:half] + x[half:])


def _pair_se(x: np.ndarray) -> float:
    pairs = _pair_means(x)
    return float(pairs.std(ddof=1) / np.sqrt(pairs.size))


def _control_variate(y: np.ndarray, control: np.ndarray, control_mean: float) -> np.ndarray:
    """``y − b (control − E[control])`` with the variance-minimising b (on pair means)."""
    cy, cx = _pair_means(y), _pair_means(control)
    var = float(cx.var())
    if var <= 1e-12 * max(float(cx.mean()) ** 2, 1.0):
        return y
    b = float(np.mean((cx - cx.mean()) * (cy - cy.mean())) / var)
    return y - b * (control - control_mean)


def _result(
    case: OptionCase,
    method: str,
    activate_usd: float,
    retrofit_usd: float,
    errors: tuple[float, float, float] | None,
) -> OptionValue:
    buy_now = activate_usd - case.premium_now_usd
    difference = buy_now - retrofit_usd
    decision: Literal["buy now", "wait"] = "buy now" if difference > 0 else "wait"
    return OptionValue(
        method=method,
        value_buy_now_usd=buy_now,
        value_wait_usd=retrofit_usd,
        option_value_of_buying_now_usd=difference,
        max_premium_now_usd=activate_usd - retrofit_usd,
        static_npv_buy_now_usd=static_npv_buy_now_usd(case),
        standard_error_usd=None if errors is None else errors[0],
        standard_error_buy_now_usd=None if errors is None else errors[1],
        standard_error_wait_usd=None if errors is None else errors[2],
        decision=decision,
        interpretation=_interpret(case, decision, buy_now, retrofit_usd, activate_usd),
    )


def _interpret(
    case: OptionCase, decision: str, buy_now: float, wait: float, activate: float
) -> str:
    arrival = (
        "a paying program exists now"
        if case.program_available_now
        else (
            f"a paying program arrives within the {case.life_years}-year charger life with "
            f"probability {1 - (1 - case.arrival_probability_per_year) ** case.life_years:.0%}"
        )
    )
    gap = abs(buy_now - wait)
    verb = "Buy bidirectional now" if decision == "buy now" else "Wait"
    better = "more" if decision == "buy now" else "less"
    return (
        f"{verb}: buying now is worth ${gap:,.0f} per port {better} than waiting and deciding "
        f"later (${buy_now:,.0f} vs ${wait:,.0f}). Paying up to ${activate - wait:,.0f} per port "
        f"now would break even against the ${case.premium_now_usd:,.0f} premium; {arrival}."
    )
