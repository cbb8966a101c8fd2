"""Baseline strategies that depots run without an optimiser: ``unmanaged`` and ``balanced``.

Both honour each session's power cap (charger, vehicle and session limits; AC vs DC) and the
partially available first and last step of a dwell. Neither looks at prices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fleetcharge.domain import Scenario
from fleetcharge.plan import Plan


def unmanaged(scenario: Scenario) -> Plan:
    """Every vehicle charges at full power from plug-in until it reaches its target.

    This is what dumb chargers do. It ignores the site's service limit; accounting reports any
    overload rather than hiding it.

    Notes
    -----
    Per session with cap :math:`\\bar p` and available fraction :math:`f_t` of step t, the energy
    the step can take is :math:`\\bar p f_t Δ`. With :math:`C_t` its running sum, the energy in
    step t is :math:`\\min(\\bar p f_t Δ, \\max(0, E − C_{t−1}))`. Fully vectorised over the
    CSR data of all sessions at once.
    """
    arrays = scenario.session_arrays()
    dt_h = scenario.horizon.step_hours
    avail = arrays.availability(scenario.horizon.n_steps)
    lengths = np.diff(avail.indptr)
    row = np.repeat(np.arange(len(arrays)), lengths)
    step_cap_kwh = avail.data * arrays.max_kw[row] * dt_h
    running = np.cumsum(step_cap_kwh)
    row_start = np.concatenate(([0.0], running))[avail.indptr[:-1]]
    before_kwh = running - step_cap_kwh - row_start[row]
    step_kwh = np.clip(arrays.energy_kwh[row] - before_kwh, 0.0, step_cap_kwh)
    charge = sp.csr_array((step_kwh / dt_h, avail.indices, avail.indptr), shape=avail.shape)
    return Plan("unmanaged", scenario, charge)


def balanced(scenario: Scenario) -> Plan:
    """Spread each session's energy evenly over its remaining dwell, within the site limit.

    In every step each plugged-in session asks for ``remaining energy / remaining available
    hours`` (at least the charger's ``min_kw``, at most its cap). When building load plus the asks
    exceed the service limit, each session first gets what it must have now to still finish at
    full power later (least laxity), and the rest of the headroom is shared in proportion to the
    remaining asks. Energy a limit defers is asked for again in later steps.

    This mirrors the "average power" heuristic of commercial depot controllers; it is a
    baseline to compare the optimal plan against, not an optimiser.
    """
    arrays = scenario.session_arrays()
    horizon = scenario.horizon
    dt_h = horizon.step_hours
    avail = arrays.availability(horizon.n_steps).tocsc()
    n_sessions = len(arrays)
    min_kw = np.array(
        [scenario.charger(s.charger_id).min_kw for s in scenario.sessions], dtype=float
    ).reshape(n_sessions)
    headroom_kw = scenario.site.service_limit_kw - scenario.building_kw()

    # Available hours from each step to the end of the session, per CSR entry (reverse cumsum).
    avail_csr = avail.tocsr()
    lengths = np.diff(avail_csr.indptr)
    row = np.repeat(np.arange(n_sessions), lengths)
    hours = avail_csr.data * dt_h
    cum = np.cumsum(hours)
    row_end = cum[np.maximum(avail_csr.indptr[1:] - 1, 0)] if len(cum) else np.zeros(0)
    hours_from_here = row_end[row] - cum + hours  # this step included
    hours_after = sp.csr_array(
        (hours_from_here - hours, avail_csr.indices, avail_csr.indptr), shape=avail.shape
    ).tocsc()

    remaining = arrays.energy_kwh.copy()
    power_kw = np.zeros_like(avail.data)  # aligned with the CSC entries of ``avail``
    for t in range(horizon.n_steps):
        lo, hi = avail.indptr[t], avail.indptr[t + 1]
        if lo == hi:
            continue
        s = avail.indices[lo:hi]
        frac = avail.data[lo:hi]
        later_h = hours_after.data[lo:hi]
        here_h = frac * dt_h
        cap_kw = arrays.max_kw[s] * frac  # interval-average cap in this step
        need = remaining[s]
        even_kw = need / np.maximum(here_h + later_h, 1e-12) * frac
        ask_kw = np.minimum(np.maximum(even_kw, min_kw[s] * frac), cap_kw)
        ask_kw = np.minimum(ask_kw, need / dt_h)
        must_kw = np.clip((need - arrays.max_kw[s] * later_h) / dt_h, 0.0, cap_kw)
        room = headroom_kw[t]
        if ask_kw.sum() > room:
            must_total = must_kw.sum()
            if must_total >= room:
                give = must_kw * (max(room, 0.0) / must_total) if must_total > 0 else must_kw * 0
            else:
                extra = ask_kw - must_kw
                share = (room - must_total) / extra.sum() if extra.sum() > 0 else 0.0
                give = must_kw + extra * min(share, 1.0)
        else:
            give = ask_kw
        remaining[s] = need - give * dt_h
        power_kw[lo:hi] = give

    charge = sp.csc_array((power_kw, avail.indices, avail.indptr), shape=avail.shape).tocsr()
    return Plan("balanced", scenario, charge)
