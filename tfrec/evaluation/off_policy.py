"""Offline A/B tests: a new ranking's clicks and revenue estimated from logged impressions (off-policy evaluation).

Logs of a stochastic logging ranker (e.g. Plackett-Luce) record, for every
impression, the `propensity` `mu(i, p)`: the probability that the logging
policy showed item `i` at position `p` (the simulator logs it; own tables map
it with the `propensity` schema role). A candidate re-ranks each session's
logged items; `candidate_position` is where it puts each logged row's item
(`rank_positions` turns its scores into positions). Under the item-position
click model (the reward of item `i` at position `p` depends on `(i, p)` only,
within a session; Li et al., "Offline Evaluation of Ranking Policies with Click
Models", KDD 2018) the candidate's expected reward per session is
`V = E_sessions[sum_i sum_p pi(i, p) * R(i, p)]`, and these estimators of it
use the weight `w = pi(i, p) / mu(i, p)` of each logged row (`pi(i, p)` is 1
where a deterministic candidate puts the row's item at its logged position, 0
elsewhere; a stochastic candidate gives it as `candidate_probability`):

* **IPS**: `mean over sessions of sum over its rows of w * r`. Unbiased where
  `mu > 0` wherever `pi > 0`: `E[w * r | item i] = sum_p mu(i, p) * pi(i, p) /
  mu(i, p) * R(i, p)`.
* **SNIPS** (self-normalised, per position): with `W_sp` the weight of the row
  session `s` logged at position `p` (0 where the candidate puts another item
  there), `E[W_sp] = sum_i mu(i, p) * pi(i, p) / mu(i, p) = sum_i pi(i, p) = 1`:
  the candidate fills position `p` once per session. So the realised total
  `sum_s W_sp` estimates `S_p`, the number of sessions with a position `p`, and
  SNIPS divides by it instead:
  `V_snips = sum_p (S_p / S) * (sum_s W_sp r_sp) / (sum_s W_sp)`. Per position,
  because only there the weights have a known mean (over all rows
  `sum w` has mean `S x slots`, but rows at different positions carry
  different rewards, and a global ratio would mix them). Biased for few
  sessions, consistent, lower variance than IPS when weights are uneven; a
  position where no weight is positive contributes 0.
* **DR** (doubly robust): a reward model `rhat(i, p)` for every logged item at
  every position gives the direct estimate `DM = sum_i sum_p pi(i, p) rhat(i,
  p)` per session (`rhat(i, candidate position of i)` for a deterministic
  candidate), and IPS corrects its error on the logged rows:
  `DM + sum_rows w * (r - rhat(i, p_logged))`. Unbiased like IPS for any
  reward model; a reward model of zeros gives IPS, a perfect one leaves only
  the noise of the observed rewards.

The logging policy's own value is the logged mean reward per session
(on-policy). Values per impression slot (`per_impression`: for clicks, the
CTR) divide by the mean number of rows per session. Confidence intervals are
percentile bootstraps over sessions (a session's rows are resampled together);
the same resamples serve every estimator and the logging policy, so lifts are
paired, and SNIPS's ratio is recomputed in every resample. The effective
sample size `ESS = (sum w)^2 / sum w^2` says how many logged rows an estimate
rests on; `degenerate` warns when it is small or one row carries too large a
share of the weight (the intervals then understate the uncertainty).

Written here because no maintained Python library does this on tabular logs:
Open Bandit Pipeline (`obp`, last release 0.5.7 in 2023) has the item-position
IPS (`SlateIndependentIPS`) on its own bandit-feedback arrays, but not the
per-position SNIPS or this DR, no session bootstrap with paired lifts; the
bootstrap is numpy (see `_bootstrap_sums` for why not `scipy.stats.bootstrap`).

Examples
--------
```python
import numpy as np
import pandas as pd
from tfrec.evaluation.off_policy import off_policy_report, rank_positions

logs = pd.DataFrame(
    {"session_id": [0, 0, 1, 1], "position": [1, 2, 1, 2], "propensity": [0.7, 0.7, 0.6, 0.6], "click": [1, 0, 0, 1]}
)
positions = rank_positions(np.array([0.9, 0.2, 0.1, 0.8]), logs.session_id)  # [1, 2, 2, 1]
report = off_policy_report(logs, positions, rewards=["click"], resamples=200)
report["click"]["ips"]["value"]  # (1 / 0.7) / 2: session 1's click moves to an unlogged position
report["click"]["logging"]["value"]  # 1.0 click per session
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

ESTIMATORS = ("ips", "snips", "dr")
# `degenerate` when ESS < max(MIN_ESS_ROWS, MIN_ESS_SHARE x rows), or one row holds over MAX_WEIGHT_SHARE of sum(w).
MIN_ESS_ROWS = 100
MIN_ESS_SHARE = 0.01
MAX_WEIGHT_SHARE = 0.05
# Bootstrap counts held at once: resamples x sessions cells (float64: 128 MB).
_BOOTSTRAP_CELLS = 2**24


def rank_positions(scores: ArrayLike, session_ids: ArrayLike, logged_position: ArrayLike | None = None) -> np.ndarray:
    """Each row's position in its session when sorted by `scores`, highest first (1 = best).

    Parameters
    ----------
    scores : array_like, shape (rows,)
        The candidate ranker's score of each logged row's item.
    session_ids : array_like, shape (rows,)
        The row's session; a session's rows need not be contiguous.
    logged_position : array_like, shape (rows,), optional
        Ties go to the item logged at the better position; without it (or
        among equal logged positions) to the earlier row.

    Returns
    -------
    numpy.ndarray of int64, shape (rows,)
        Positions `1..n` within each session of `n` rows.

    Raises
    ------
    ValueError
        Where the lengths differ or a score or session id is missing.

    Examples
    --------
    >>> rank_positions([0.1, 0.3, 2.0, 1.0, 1.0], [7, 7, 9, 9, 9], logged_position=[1, 2, 3, 2, 1]).tolist()
    [2, 1, 1, 3, 2]
    """
    score = np.asarray(scores, dtype=np.float64).ravel()
    sessions = pd.Series(np.asarray(session_ids).ravel())
    if len(score) != len(sessions):
        raise ValueError(f"rank_positions: scores has {len(score)} rows, session_ids {len(sessions)}")
    bad = ~np.isfinite(score)
    if bad.any():
        raise ValueError(f"rank_positions: scores has {int(bad.sum())} missing or infinite values")
    if sessions.isna().any():
        raise ValueError(f"rank_positions: session_ids has {int(sessions.isna().sum())} missing values")
    codes = pd.factorize(sessions)[0]
    if logged_position is None:
        tie = np.zeros(len(score))
    else:
        tie = np.asarray(logged_position, dtype=np.float64).ravel()
        if len(tie) != len(score):
            raise ValueError(f"rank_positions: logged_position has {len(tie)} rows, scores {len(score)}")
    row = np.arange(len(score))
    # lexsort: the last key sorts first (session, then score descending, then logged position, then row).
    order = np.lexsort((row, tie, -score, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(score) else np.zeros(0, int)
    first = np.repeat(starts, np.diff(np.r_[starts, len(score)]))
    positions = np.empty(len(score), np.int64)
    positions[order] = row - first + 1
    return positions


def _fail(message: str) -> None:
    raise ValueError(f"off_policy_report: {message}")


def _numeric(logs: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(logs[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        _fail(f"column '{column}' has {int(bad.sum())} missing or non-numeric rows (of {len(values)})")
    return values


def _check_logs(logs: pd.DataFrame, rewards: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`(session codes, positions, propensities, sessions)` of valid logs; ValueError naming the column otherwise."""
    if not isinstance(logs, pd.DataFrame):
        _fail(f"logs must be a pandas DataFrame, got {type(logs).__name__}")
    for column in ("session_id", "position", "propensity", *rewards):
        if column not in logs.columns:
            _fail(f"the logs have no column '{column}' (have {list(logs.columns)})")
    if len(logs) == 0:
        _fail("the logs have no rows")
    if logs["session_id"].isna().any():
        _fail(f"column 'session_id' has {int(logs['session_id'].isna().sum())} missing rows")
    position_f = _numeric(logs, "position")
    mu = _numeric(logs, "propensity")
    bad = (mu <= 0) | (mu > 1)
    if bad.any():
        _fail(
            f"column 'propensity' must be in (0, 1] (the logging policy's probability of showing the row's item "
            f"at its position); {int(bad.sum())} rows are not (e.g. {mu[bad][0]!r})"
        )
    bad = (position_f < 1) | (position_f != np.round(position_f))
    if bad.any():
        _fail(f"column 'position' must hold whole numbers >= 1 (1 = top); {int(bad.sum())} rows do not")
    codes, sessions = pd.factorize(logs["session_id"])
    position = position_f.astype(np.int64)
    duplicated = pd.DataFrame({"s": codes, "p": position}).duplicated().to_numpy()
    if duplicated.any():
        example = sessions[codes[duplicated][0]]
        _fail(
            f"column 'position': {int(duplicated.sum())} rows repeat a position of their session "
            f"(e.g. session_id {example!r} at position {position[duplicated][0]})"
        )
    return codes, position, mu, len(sessions)


def _check_candidate(
    candidate_position: ArrayLike | str | None,
    candidate_probability: ArrayLike | str | None,
    logs: pd.DataFrame,
    codes: np.ndarray,
    n_sessions: int,
    k: int,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """`(candidate positions or None, pi [rows, k] or [rows] or None)`, validated."""
    n = len(logs)

    def column(value: ArrayLike | str, name: str) -> np.ndarray:
        """The argument as floats in the logs' row order (a str: the logs' column of that name)."""
        if isinstance(value, str):
            if value not in logs.columns:
                _fail(f"{name}: the logs have no column '{value}'")
            array = pd.to_numeric(logs[value], errors="coerce").to_numpy(np.float64)
        else:
            array = np.asarray(value, dtype=np.float64)
        if array.ndim == 0 or array.shape[0] != n:
            _fail(f"{name} must have one value per row of the logs ({n}), got shape {array.shape}")
        return array

    if (candidate_position is None) == (candidate_probability is None):
        _fail(
            "give candidate_position (a deterministic ranking) or candidate_probability (a stochastic one), "
            + ("not both" if candidate_position is not None else "got neither")
        )
    if candidate_position is not None:
        cand_f = column(candidate_position, "candidate_position").ravel()
        rows = np.bincount(codes, minlength=n_sessions)[codes]
        bad = ~np.isfinite(cand_f) | (cand_f < 1) | (cand_f > rows) | (cand_f != np.round(cand_f))
        if bad.any():
            _fail(
                f"candidate_position must be whole numbers from 1 to the session's row count; {int(bad.sum())} "
                f"rows are not (e.g. {cand_f[bad][0]!r} in a session of {rows[bad][0]} rows)"
            )
        cand = cand_f.astype(np.int64)
        duplicated = pd.DataFrame({"s": codes, "p": cand}).duplicated().to_numpy()
        if duplicated.any():
            _fail(f"candidate_position: {int(duplicated.sum())} rows repeat a position of their session")
        return cand, None
    assert candidate_probability is not None
    pi = column(candidate_probability, "candidate_probability")
    if pi.ndim == 2 and pi.shape[1] != k:
        _fail(f"candidate_probability must be [rows] or [rows, {k}] (positions 1..{k}), got {pi.shape}")
    if pi.ndim not in (1, 2):
        _fail(f"candidate_probability must be [rows] or [rows, {k}], got {pi.shape}")
    bad = ~np.isfinite(pi) | (pi < 0) | (pi > 1)
    if bad.any():
        _fail(f"candidate_probability must be probabilities in [0, 1]; {int(bad.sum())} values are not")
    if pi.ndim == 2:
        # A ranking shows each item at most once and fills each position of a session at most once.
        if (pi.sum(1) > 1 + 1e-6).any():
            _fail(f"candidate_probability: {int((pi.sum(1) > 1 + 1e-6).sum())} rows sum to over 1 over positions")
        per_position = np.zeros((n_sessions, k))
        np.add.at(per_position, codes, pi)
        if (per_position > 1 + 1e-6).any():
            _fail("candidate_probability: some sessions' probabilities at a position sum to over 1")
    return None, pi


def _check_reward_model(
    reward_model: Mapping[str, ArrayLike] | None, rewards: Sequence[str], n: int, k: int
) -> dict[str, np.ndarray]:
    if reward_model is None:
        return {}
    if not isinstance(reward_model, Mapping):
        _fail(f"reward_model must be a dict {{reward: [rows, {k}] array}}, got {type(reward_model).__name__}")
    unknown = set(reward_model) - set(rewards)
    if unknown:
        _fail(f"reward_model has rewards {sorted(unknown)} that are not in rewards {list(rewards)}")
    out = {}
    for reward, value in reward_model.items():
        rhat = np.asarray(value, dtype=np.float64)
        if rhat.shape != (n, k):
            _fail(f"reward_model['{reward}'] must be [rows, positions] = [{n}, {k}], got {rhat.shape}")
        if not np.isfinite(rhat).all():
            _fail(f"reward_model['{reward}'] has {int((~np.isfinite(rhat)).sum())} missing or infinite values")
        out[reward] = rhat
    return out


def _bootstrap_sums(columns: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """`[resamples, m]` sums of the `[sessions, m]` per-session columns over sessions resampled with replacement.

    One draw of counts serves every column, so all estimates (and their lifts) see the same resamples; scipy's
    `stats.bootstrap` draws its own resamples per call and has no shared, paired resampling of many statistics.
    Counts are multinomial (how often each session is drawn), in chunks that bound the memory.
    """
    n_sessions = columns.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CELLS // n_sessions)
    uniform = np.full(n_sessions, 1.0 / n_sessions)
    parts = []
    for start in range(0, resamples, chunk):
        counts = rng.multinomial(n_sessions, uniform, size=min(chunk, resamples - start)).astype(np.float64)
        parts.append(counts @ columns)
    return np.concatenate(parts)


def _ess(w: np.ndarray) -> float:
    square = float((w**2).sum())
    return float(w.sum() ** 2 / square) if square > 0 else 0.0


def off_policy_report(
    logs: pd.DataFrame,
    candidate_position: ArrayLike | str | None = None,
    rewards: Sequence[str] = ("click", "purchase_value"),
    reward_model: Mapping[str, ArrayLike] | None = None,
    candidate_probability: ArrayLike | str | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    min_ess: float | None = None,
    max_weight_share: float = MAX_WEIGHT_SHARE,
) -> dict:
    """Estimates a candidate ranking's reward per session from logged impressions with IPS, SNIPS and DR.

    Parameters
    ----------
    logs : pandas.DataFrame
        One row per logged impression: `session_id`, `position` (1 = top,
        unique within a session), `propensity` (the logging policy's
        probability of showing the row's item at its position, in (0, 1]) and
        the reward columns.
    candidate_position : array_like of int, shape (rows,), or str, optional
        A deterministic candidate: the position (1..rows of the session) it
        gives each row's item, e.g. `rank_positions` of its scores, or the
        name of a column holding it.
    rewards : sequence of str
        Reward columns (e.g. `click`, `purchase_value`).
    reward_model : dict of str to array_like of shape (rows, K), optional
        DR's `rhat` per reward: the predicted reward of the row's item at
        positions 1..K, K the largest logged position (rows of the logs, not
        `[sessions, items, positions]`, so that sessions may differ in
        length). Rewards without one get DR = IPS (a reward model of zeros).
    candidate_probability : array_like, shape (rows,) or (rows, K), or str, optional
        A stochastic candidate instead of `candidate_position`: `[rows]` the
        probability it shows the row's item at the row's logged position
        (IPS, SNIPS; DR only without a reward model), or `[rows, K]` at every
        position 1..K (all three; DR's direct estimate needs them all).
    confidence : float
        Level of the percentile bootstrap intervals, in (0, 1).
    resamples : int
        Bootstrap resamples over sessions (>= 10).
    seed : int
        Seed of the resamples.
    min_ess : float, optional
        `degenerate` below this effective sample size; default
        `max(MIN_ESS_ROWS, MIN_ESS_SHARE x rows)` (100 rows or 1% of them).
    max_weight_share : float
        `degenerate` when one row holds more than this share of the total
        weight.

    Returns
    -------
    dict
        `{reward: {"logging": {...}, "ips": {...}, "snips": {...}, "dr": {...}}}`
        plus `sessions`, `rows`, `impressions_per_session`, `ess` (over all
        rows; IPS and DR share their weights), `ess_by_position` (SNIPS's
        per-position weights), `max_weight_share`, `degenerate`, `warning`.
        Every entry has `value` (per session), `ci_low`, `ci_high`,
        `per_impression` (value per impression slot: CTR for clicks) with
        `per_impression_ci_low`, `per_impression_ci_high`; the estimators
        also `lift` (minus the logging policy), `lift_ci_low`, `lift_ci_high`,
        `relative_lift` with `relative_lift_ci_low`, `relative_lift_ci_high`
        (paired bootstrap), `ess` (SNIPS: the sum over positions),
        `degenerate` and `warning` ("" unless degenerate).

    Raises
    ------
    ValueError
        Naming the column or argument: a missing column, NaN, a propensity
        outside (0, 1], positions that are not whole numbers >= 1 or repeat
        within a session, a candidate position outside 1..session rows or
        repeated, a reward model of the wrong shape.

    Examples
    --------
    >>> logs = pd.DataFrame({"session_id": [0, 0, 1, 1], "position": [1, 2, 1, 2],
    ...                      "propensity": [0.5, 0.5, 0.5, 0.5], "click": [1, 0, 0, 1]})
    >>> report = off_policy_report(logs, [1, 2, 2, 1], rewards=["click"], resamples=100)  # keeps session 0's order
    >>> report["click"]["ips"]["value"], report["click"]["logging"]["value"]  # (1 / 0.5 + 0) / 2 sessions
    (1.0, 1.0)
    """
    rewards = list(rewards)
    if not rewards:
        _fail("rewards is empty; name at least one reward column")
    codes, position, mu, n_sessions = _check_logs(logs, rewards)
    if not 0 < confidence < 1:
        _fail(f"confidence must be in (0, 1), got {confidence}")
    if int(resamples) != resamples or resamples < 10:
        _fail(f"resamples must be a whole number >= 10, got {resamples}")
    if not 0 < max_weight_share <= 1:
        _fail(f"max_weight_share must be in (0, 1], got {max_weight_share}")
    n, k = len(logs), int(position.max())
    cand, pi = _check_candidate(candidate_position, candidate_probability, logs, codes, n_sessions, k)
    models = _check_reward_model(reward_model, rewards, n, k)
    if models and pi is not None and pi.ndim == 1:
        _fail(
            "DR with a reward model needs the stochastic candidate's probability at every position: pass "
            f"candidate_probability as [rows, {k}], or a deterministic candidate_position"
        )
    rows_index = np.arange(n)
    if cand is not None:
        pi_logged = (cand == position).astype(np.float64)
    else:
        assert pi is not None
        pi_logged = pi if pi.ndim == 1 else pi[rows_index, position - 1]
    w = pi_logged / mu

    def per_session(x: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=x, minlength=n_sessions)

    def per_session_position(x: np.ndarray) -> np.ndarray:
        return np.bincount(codes * k + position - 1, weights=x, minlength=n_sessions * k).reshape(n_sessions, k)

    # Per-session columns; every statistic (and its bootstrap) is a function of their sums over sessions.
    has_sp = per_session_position(np.ones(n))  # 1 where the session logged a row at position p
    w_sp, w2_sp = per_session_position(w), per_session_position(w**2)
    columns = [per_session(np.ones(n))[:, None], has_sp, w_sp]
    slices: dict[str, slice] = {}

    def add(name: str, block: np.ndarray) -> None:
        start = sum(c.shape[1] for c in columns)
        columns.append(block if block.ndim == 2 else block[:, None])
        slices[name] = slice(start, start + columns[-1].shape[1])

    for reward in rewards:
        r = _numeric(logs, reward)
        add(f"{reward}/logging", per_session(r))
        add(f"{reward}/ips", per_session(w * r))
        add(f"{reward}/snips", per_session_position(w * r))
        if reward in models:
            rhat = models[reward]
            if cand is not None:
                direct = rhat[rows_index, cand - 1]
            else:
                assert pi is not None
                direct = (pi * rhat).sum(1)
            add(f"{reward}/dr", per_session(direct + w * (r - rhat[rows_index, position - 1])))
        else:
            slices[f"{reward}/dr"] = slices[f"{reward}/ips"]
    matrix = np.concatenate(columns, axis=1)
    # Row 0: the logs' own sums; rows 1..: the bootstrap resamples' sums.
    sums = np.concatenate([matrix.sum(0, keepdims=True), _bootstrap_sums(matrix, int(resamples), seed)])
    slots = sums[:, 0]
    has, weight = sums[:, 1 : 1 + k], sums[:, 1 + k : 1 + 2 * k]

    ess = _ess(w)
    ess_by_position = [
        float(w_sp[:, p].sum() ** 2 / w2_sp[:, p].sum()) if w2_sp[:, p].sum() > 0 else 0.0 for p in range(k)
    ]
    weight_total = float(w.sum())
    share = float(w.max() / weight_total) if weight_total > 0 else 1.0
    threshold = max(MIN_ESS_ROWS, MIN_ESS_SHARE * n) if min_ess is None else float(min_ess)
    problems = []
    if ess < threshold:
        problems.append(f"effective sample size {ess:,.0f} of {n:,} rows (below {threshold:,.0f})")
    if share > max_weight_share:
        problems.append(f"one row carries {share:.1%} of the total weight (over {max_weight_share:.0%})")
    warning = (
        "; ".join(problems) + ": the candidate's rankings are rarely logged, the estimates rest on few rows and "
        "their intervals understate the uncertainty"
        if problems
        else ""
    )
    alpha = (1 - confidence) / 2

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def interval(values: np.ndarray, name: str = "value") -> dict:
        """`{name, name_ci_low, name_ci_high}` of `values[0]`, the estimate, and `values[1:]`, its resamples."""
        boot = values[1:][np.isfinite(values[1:])]
        low, high = np.quantile(boot, [alpha, 1 - alpha]) if len(boot) else (np.nan, np.nan)
        prefix = "" if name == "value" else f"{name}_"
        return {name: float(values[0]), f"{prefix}ci_low": float(low), f"{prefix}ci_high": float(high)}

    def entry(total: np.ndarray) -> dict:
        """Value per session and per impression slot of `total`, `[1 + resamples]` sums over sessions."""
        return interval(total / n_sessions) | interval(total / slots, "per_impression")

    report: dict = {
        "sessions": n_sessions,
        "rows": n,
        "impressions_per_session": n / n_sessions,
        "ess": ess,
        "ess_by_position": ess_by_position,
        "max_weight_share": share,
        "degenerate": bool(problems),
        "warning": warning,
    }
    for reward in rewards:
        logged = sums[:, slices[f"{reward}/logging"]][:, 0]
        out = {"logging": entry(logged)}
        for name in ESTIMATORS:
            if name == "snips":
                # Per position p: the weighted mean reward times S_p (sessions with a row at p), summed over p; a
                # sum over sessions like the others. (A resample's counts sum to S, so its S_p is `has[:, p]`.)
                mean_at_p = np.nan_to_num(ratio(sums[:, slices[f"{reward}/snips"]], weight), nan=0.0)
                total = (mean_at_p * has).sum(1)
                estimator_ess = float(sum(ess_by_position))
            else:
                total = sums[:, slices[f"{reward}/{name}"]][:, 0]
                estimator_ess = ess
            out[name] = (
                entry(total)
                | interval((total - logged) / n_sessions, "lift")
                | interval(ratio(total - logged, logged), "relative_lift")
                | {"ess": estimator_ess, "degenerate": bool(problems), "warning": warning}
            )
        report[reward] = out
    return report


def position_reward_model(
    ctr_at_top: ArrayLike, logs: pd.DataFrame, reward: str = "click", value: ArrayLike | None = None
) -> np.ndarray:
    """A reward model `rhat(i, p) = ctr_at_top(i) * e(p) [* value(i)]` for DR, `[rows, K]`.

    Parameters
    ----------
    ctr_at_top : array_like, shape (rows,)
        A model's click probability of each logged row's item at position 1.
    logs : pandas.DataFrame
        The logs with `position` and the `click` column (or `reward` where
        `value` is None).
    reward : str
        The logged clicks that calibrate the examination curve (default
        `click`).
    value : array_like, shape (rows,), optional
        The expected reward of a click on the row's item (e.g. purchase
        value); turns predicted clicks into predicted revenue.

    Returns
    -------
    numpy.ndarray, shape (rows, K)
        K the largest logged position. `e(p)` is calibrated on the logs: the
        clicks logged at position `p` over the predicted top-position CTRs
        of the items logged there (the model's examination curve as the logs
        show it; under a Plackett-Luce logger, better items sit higher, and
        the ratio absorbs the model's miscalibration).

    Examples
    --------
    >>> logs = pd.DataFrame({"position": [1, 2, 1, 2], "click": [1, 0, 1, 1]})
    >>> position_reward_model([0.5, 0.5, 1.0, 0.5], logs).round(3).tolist()
    [[0.667, 0.5], [0.667, 0.5], [1.333, 1.0], [0.667, 0.5]]
    """
    ctr = np.asarray(ctr_at_top, dtype=np.float64).ravel()
    for column in ("position", reward if value is None else "click"):
        if column not in logs.columns:
            raise ValueError(f"position_reward_model: the logs have no column '{column}'")
    if len(ctr) != len(logs):
        raise ValueError(f"position_reward_model: ctr_at_top has {len(ctr)} rows, the logs {len(logs)}")
    if not np.isfinite(ctr).all():
        raise ValueError(f"position_reward_model: ctr_at_top has {int((~np.isfinite(ctr)).sum())} non-finite values")
    position = logs["position"].to_numpy(np.int64)
    clicks = logs[reward if value is None else "click"].to_numpy(np.float64)
    k = int(position.max())
    predicted = np.bincount(position - 1, weights=ctr, minlength=k)
    observed = np.bincount(position - 1, weights=clicks, minlength=k)
    exam = np.where(predicted > 0, observed / np.where(predicted > 0, predicted, 1), 0.0)
    rhat = ctr[:, None] * exam[None, :]
    if value is not None:
        v = np.asarray(value, dtype=np.float64).ravel()
        if len(v) != len(ctr):
            raise ValueError(f"position_reward_model: value has {len(v)} rows, the logs {len(ctr)}")
        rhat = rhat * v[:, None]
    return rhat
