//! The statistics of the canary judge, at the level of requests, not of periods:
//!
//! - [`error_rates`]: the new error rate against the old one with a margin that is both
//!   relative and absolute (`p_new <= ratio * p_old + increase`), by a score test with
//!   the likelihood maximised under the margin (Farrington and Manning's method): valid
//!   at zero errors, where an unpooled standard error treats a side without errors as
//!   certain. Where errors are rare it runs hot, so a Fail must also hold on the exact
//!   conditional test of the relative margin (mid-p).
//! - [`slower_share`]: the new version's latency against the old one's scaled by the
//!   tolerance, as a Mann-Whitney comparison of request counts per latency bin
//!   (CloudWatch's trimmed counts): the new version's bins are the old one's edges times
//!   `1 + tolerance`, so "new / (1 + tolerance) is slower than old" is compared exactly on
//!   shared bins. Exact p-values (ties included) for small samples, the tie-corrected
//!   normal approximation otherwise.
//! - [`share_within`]: one version's share of requests beyond an absolute limit (error
//!   rate, share slower than a latency limit), by the exact binomial (Clopper-Pearson).
//!
//! Every test is two one-sided tests at `alpha` around its margin: Fail when the data
//! show the new version beyond it, Pass when they show it within, and otherwise
//! Inconclusive, with how much more traffic would likely decide. Non-finite input is
//! Inconclusive, never Pass.

use serde::Serialize;

/// What a test concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Pass,
    Fail,
    Inconclusive,
}

/// Upper tail of the standard normal distribution, `P(Z > z)`.
///
/// The complementary error function approximation with fractional error below 1.2e-7
/// everywhere, plenty for significance levels of 0.001 and above.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The `z` with `P(Z > z) = p`, by bisection on [`normal_sf`] (to 1e-9).
pub fn normal_isf(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if normal_sf(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Both one-sided tests around a margin at `alpha`.
fn two_sided_finding(p_beyond: f64, p_within: f64, alpha: f64) -> Finding {
    if p_beyond < alpha {
        Finding::Fail
    } else if p_within < alpha {
        Finding::Pass
    } else {
        Finding::Inconclusive
    }
}

/// Invocations more, on both sides in today's proportions, after which a statistic now at
/// `z` would likely reach `z_alpha` (standard errors shrink with the square root of the
/// traffic). `None` when nothing points either way.
fn needs_more(z: f64, z_alpha: f64, total: f64) -> Option<u64> {
    if !z.is_finite() || z.abs() < 1e-9 || total <= 0.0 {
        return None;
    }
    let factor = (z_alpha / z.abs()).powi(2);
    (factor > 1.0).then(|| ((factor - 1.0) * total).ceil() as u64)
}

// --- error rates ----------------------------------------------------------------------

/// How much worse the new error rate may be: `p_new <= ratio * p_old + increase`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorMargin {
    pub ratio: f64,
    pub increase: f64,
}

impl ErrorMargin {
    fn at(&self, p_old: f64) -> f64 {
        self.ratio * p_old + self.increase
    }
}

/// The error comparison's inputs, estimate and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorTest {
    pub finding: Finding,
    pub old_errors: f64,
    pub old_invocations: f64,
    pub new_errors: f64,
    pub new_invocations: f64,
    pub old_rate: f64,
    pub new_rate: f64,
    /// The rate the margin allows the new version, at the old one's observed rate.
    pub allowed_rate: f64,
    /// `new_rate - allowed_rate`, with its interval at `1 - 2 alpha`.
    pub excess: f64,
    pub excess_interval: [f64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    /// P-value of "no worse than the margin" (small: Fail): the larger of the score
    /// test's and the exact conditional test's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_worse: Option<f64>,
    /// The exact conditional test of `p_new <= ratio x p_old` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_p_worse: Option<f64>,
    /// P-value of "worse than the margin" (small: Pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_within: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_more_invocations: Option<u64>,
    pub method: &'static str,
    pub why: String,
}

/// The old rate that maximises the likelihood of both samples when the new rate sits on
/// the margin (`p_new = ratio * p_old + increase`): the log-likelihood is concave in
/// `p_old`, so its derivative is found by bisection.
fn constrained_old_rate(x_old: f64, n_old: f64, x_new: f64, n_new: f64, m: ErrorMargin) -> f64 {
    let upper = ((1.0 - m.increase) / m.ratio).min(1.0);
    if upper <= 0.0 {
        return 0.0;
    }
    let slope = |p: f64| {
        let q = m.at(p);
        x_old / p - (n_old - x_old) / (1.0 - p) + m.ratio * x_new / q
            - m.ratio * (n_new - x_new) / (1.0 - q)
    };
    let (mut lo, mut hi) = (1e-12, upper * (1.0 - 1e-12));
    if slope(lo) <= 0.0 {
        return 0.0;
    }
    if slope(hi) >= 0.0 {
        return upper;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if slope(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Is the new version's error rate beyond `margin` of the old one's?
///
/// `old` and `new` are `(errors, invocations)`. Either side below `min_n` invocations, or
/// any input not finite: Inconclusive.
pub fn error_rates(
    old: (f64, f64),
    new: (f64, f64),
    margin: ErrorMargin,
    alpha: f64,
    min_n: f64,
) -> ErrorTest {
    let (x_old, n_old) = (old.0.max(0.0), old.1.max(0.0));
    let (x_new, n_new) = (new.0.max(0.0), new.1.max(0.0));
    let rate = |x: f64, n: f64| if n > 0.0 { (x / n).min(1.0) } else { 0.0 };
    let (p_old, p_new) = (rate(x_old, n_old), rate(x_new, n_new));
    let allowed = margin.at(p_old);
    let mut out = ErrorTest {
        finding: Finding::Inconclusive,
        old_errors: x_old,
        old_invocations: n_old,
        new_errors: x_new,
        new_invocations: n_new,
        old_rate: p_old,
        new_rate: p_new,
        allowed_rate: allowed,
        excess: p_new - allowed,
        excess_interval: [f64::NAN, f64::NAN],
        z: None,
        p_worse: None,
        exact_p_worse: None,
        p_within: None,
        needs_more_invocations: None,
        method: "score test under the margin (Farrington-Manning), failures confirmed by the exact conditional test",
        why: String::new(),
    };
    let inputs = [old.0, old.1, new.0, new.1, margin.ratio, margin.increase];
    if inputs.iter().any(|v| !v.is_finite()) {
        out.why = "a count or the margin is not a finite number: nothing can be judged".into();
        return out;
    }
    if n_old < min_n.max(1.0) || n_new < min_n.max(1.0) {
        out.why = format!(
            "too few invocations to compare (old {n_old}, new {n_new}; at least {min_n} each)"
        );
        return out;
    }
    let (x_old, x_new) = (x_old.min(n_old), x_new.min(n_new));
    let q_old = constrained_old_rate(x_old, n_old, x_new, n_new, margin);
    let q_new = margin.at(q_old).min(1.0);
    let var = q_new * (1.0 - q_new) / n_new + margin.ratio.powi(2) * q_old * (1.0 - q_old) / n_old;
    let z_alpha = normal_isf(alpha);
    let wald = (p_new * (1.0 - p_new) / n_new
        + margin.ratio.powi(2) * p_old * (1.0 - p_old) / n_old)
        .max(var)
        .sqrt();
    out.excess_interval = [out.excess - z_alpha * wald, out.excess + z_alpha * wald];
    if var <= 0.0 {
        out.why = "no variance under the margin (no errors and no margin): cannot tell".into();
        return out;
    }
    let z = out.excess / var.sqrt();
    // The score test runs hot when errors are rare (one error in 90 invocations against
    // none in 800 would fail): a failure must also hold on the exact conditional test of
    // the relative margin alone, which is never anti-conservative.
    let exact = conditional_ratio_tail(x_old, n_old, x_new, n_new, margin.ratio);
    let (p_worse, p_within) = (normal_sf(z).max(exact), normal_sf(-z));
    out.exact_p_worse = Some(exact);
    out.z = Some(z);
    out.p_worse = Some(p_worse);
    out.p_within = Some(p_within);
    out.finding = two_sided_finding(p_worse, p_within, alpha);
    explain_errors(&mut out, margin, alpha, z_alpha);
    out
}

/// The mid-p of `X >= x_new` for the new version's share of all errors, given their
/// total, when `p_new = ratio x p_old` (errors as rare events: the share is binomial
/// with `ratio n_new / (ratio n_new + n_old)`): `P(X > x) + P(X = x) / 2`. Exact given
/// the total; the mid-p (Lancaster) removes most of the discreteness that makes the
/// plain exact test far below its level at a handful of errors.
fn conditional_ratio_tail(x_old: f64, n_old: f64, x_new: f64, n_new: f64, ratio: f64) -> f64 {
    let total = (x_old + x_new).round();
    let x = x_new.round();
    if x <= 0.0 {
        return 1.0;
    }
    let share = ratio * n_new / (ratio * n_new + n_old);
    let at_least = beta_inc(x, total - x + 1.0, share);
    let above = if x >= total {
        0.0
    } else {
        beta_inc(x + 1.0, total - x, share)
    };
    0.5 * (at_least + above)
}

/// The error test's explanation, and how much more traffic an undecided one needs.
fn explain_errors(out: &mut ErrorTest, margin: ErrorMargin, alpha: f64, z_alpha: f64) {
    let (p_old, p_new, allowed) = (out.old_rate, out.new_rate, out.allowed_rate);
    let (p_worse, p_within) = (out.p_worse.unwrap_or(1.0), out.p_within.unwrap_or(1.0));
    let [low, high] = out.excess_interval;
    let allowed_text = format!(
        "{:.4}% (old {:.4}% x {} + {} points; excess {:+.4} points, interval {:+.4} to {:+.4})",
        allowed * 100.0,
        p_old * 100.0,
        margin.ratio,
        margin.increase * 100.0,
        out.excess * 100.0,
        low * 100.0,
        high * 100.0
    );
    out.why = match out.finding {
        Finding::Fail => format!(
            "new error rate {:.4}% is above the allowed {allowed_text} (p={p_worse:.4} < {alpha})",
            p_new * 100.0
        ),
        Finding::Pass => format!(
            "new error rate {:.4}% is within the allowed {allowed_text} (p={p_within:.4} < {alpha})",
            p_new * 100.0
        ),
        Finding::Inconclusive => {
            let total = out.old_invocations + out.new_invocations;
            out.needs_more_invocations = needs_more(out.z.unwrap_or(0.0), z_alpha, total);
            format!(
                "new error rate {:.4}% against the allowed {allowed_text}: the data cannot tell yet{}",
                p_new * 100.0,
                more_text(out.needs_more_invocations)
            )
        }
    };
}

fn more_text(more: Option<u64>) -> String {
    more.map_or_else(String::new, |n| {
        format!(" (needs about {n} more invocations)")
    })
}

// --- latency: request counts per bin ----------------------------------------------------

/// The latency comparison's inputs, estimate and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftTest {
    pub finding: Finding,
    /// Requests per bin, lowest bin first.
    pub old_counts: Vec<f64>,
    pub new_counts: Vec<f64>,
    pub n_old: f64,
    pub n_new: f64,
    /// The probability that a new request, its latency divided by `1 + tolerance`, is
    /// slower than an old one (ties count half): 0.5 is "the same", above is slower.
    pub slower_probability: f64,
    /// Its interval at `1 - 2 alpha` (Hanley and McNeil's variance).
    pub slower_probability_interval: [f64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub u: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_worse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_within: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_more_invocations: Option<u64>,
    pub why: String,
}

/// Samples no larger than this in total get the exact distribution of the rank sum
/// given the ties; larger ones the normal approximation.
pub const EXACT_MAX_REQUESTS: u64 = 60;

/// Is the new version slower than the old one by more than the tolerance?
///
/// `old_counts[b]` and `new_counts[b]` are the requests of each version in bin `b`, the
/// new version's bin edges being the old one's times `1 + tolerance` (so a bin holds
/// the same latencies once the new ones are divided by it). Either side below `min_n`
/// requests, or a count that is not finite: Inconclusive.
pub fn slower_share(
    old_counts: &[f64],
    new_counts: &[f64],
    tolerance_pct: f64,
    alpha: f64,
    min_n: f64,
) -> ShiftTest {
    let n_old: f64 = old_counts.iter().sum();
    let n_new: f64 = new_counts.iter().sum();
    let mut out = ShiftTest {
        finding: Finding::Inconclusive,
        old_counts: old_counts.to_vec(),
        new_counts: new_counts.to_vec(),
        n_old,
        n_new,
        slower_probability: f64::NAN,
        slower_probability_interval: [f64::NAN, f64::NAN],
        u: None,
        p_worse: None,
        p_within: None,
        method: None,
        needs_more_invocations: None,
        why: String::new(),
    };
    let counts_ok = old_counts.len() == new_counts.len()
        && old_counts
            .iter()
            .chain(new_counts)
            .all(|c| c.is_finite() && *c >= 0.0);
    if !counts_ok || !tolerance_pct.is_finite() {
        out.why = "a request count is missing or not a finite number: nothing can be judged".into();
        return out;
    }
    if n_old < min_n.max(1.0) || n_new < min_n.max(1.0) {
        out.why = format!(
            "too few requests to compare (old {n_old}, new {n_new}; at least {min_n} each)"
        );
        return out;
    }
    let totals: Vec<u64> = old_counts
        .iter()
        .zip(new_counts)
        .map(|(a, b)| (a + b).round() as u64)
        .collect();
    let new_counts_u: Vec<u64> = new_counts.iter().map(|c| c.round() as u64).collect();
    let ranks = RankSum::of(&totals, &new_counts_u);
    let n = new_counts_u.iter().sum::<u64>() as f64;
    let m = totals.iter().sum::<u64>() as f64 - n;
    let u = ranks.sum_new - n * (n + 1.0) / 2.0;
    let theta = u / (n * m);
    out.u = Some(u);
    out.slower_probability = theta;
    let z_alpha = normal_isf(alpha);
    let se = hanley_mcneil_se(theta, n, m);
    out.slower_probability_interval = [
        (theta - z_alpha * se).max(0.0),
        (theta + z_alpha * se).min(1.0),
    ];
    let (p_worse, p_within, method, z) = match rank_tails(&totals, &new_counts_u, &ranks, u) {
        Ok(tails) => tails,
        Err(why) => {
            out.why = why.into();
            return out;
        }
    };
    out.p_worse = Some(p_worse);
    out.p_within = Some(p_within);
    out.method = Some(method);
    out.finding = two_sided_finding(p_worse, p_within, alpha);
    explain_shift(
        &mut out,
        tolerance_pct,
        alpha,
        z_alpha,
        z.unwrap_or((theta - 0.5) / se.max(1e-12)),
    );
    out
}

/// The one-sided tails of the new sample's rank sum: exact for small samples, the
/// tie-corrected normal approximation (with continuity correction) otherwise; and the
/// normal statistic when there is one.
fn rank_tails(
    totals: &[u64],
    new: &[u64],
    ranks: &RankSum,
    u: f64,
) -> Result<(f64, f64, &'static str, Option<f64>), &'static str> {
    if totals.iter().sum::<u64>() <= EXACT_MAX_REQUESTS {
        let (upper, lower) = exact_tails(totals, new.iter().sum(), ranks.sum2_new);
        return Ok((upper, lower, "exact (ties by bin)", None));
    }
    let n = new.iter().sum::<u64>() as f64;
    let m = totals.iter().sum::<u64>() as f64 - n;
    let var = n * m / 12.0 * ((n + m + 1.0) - ranks.tie_term / ((n + m) * (n + m - 1.0)));
    if var <= 0.0 {
        return Err(
            "every request of both versions falls in one bin: the bins cannot tell them apart",
        );
    }
    let (mean, sd) = (n * m / 2.0, var.sqrt());
    Ok((
        normal_sf((u - mean - 0.5) / sd),
        normal_sf((mean - u - 0.5) / sd),
        "normal (tie-corrected)",
        Some((u - mean) / sd),
    ))
}

/// The latency test's explanation, and how much more traffic an undecided one needs.
fn explain_shift(out: &mut ShiftTest, tolerance_pct: f64, alpha: f64, z_alpha: f64, z: f64) {
    let [low, high] = out.slower_probability_interval;
    let theta = format!(
        "{:.3} (interval {low:.3}-{high:.3})",
        out.slower_probability
    );
    let (p_worse, p_within) = (out.p_worse.unwrap_or(1.0), out.p_within.unwrap_or(1.0));
    let scale = 1.0 + tolerance_pct / 100.0;
    out.why = match out.finding {
        Finding::Fail => format!(
            "the new version is slower than the old one by more than {tolerance_pct}%: P(new/{scale} > old) = {theta} (p={p_worse:.4} < {alpha})"
        ),
        Finding::Pass => format!(
            "the new version is within {tolerance_pct}% of the old one's latency: P(new/{scale} > old) = {theta} (p={p_within:.4} < {alpha})"
        ),
        Finding::Inconclusive => {
            out.needs_more_invocations = needs_more(z, z_alpha, out.n_old + out.n_new);
            format!(
                "latency within {tolerance_pct}% or not: the data cannot tell yet, P(new/{scale} > old) = {theta}{}",
                more_text(out.needs_more_invocations)
            )
        }
    };
}

/// The standard error of `U / (n m)` (Hanley and McNeil, 1982).
fn hanley_mcneil_se(theta: f64, n: f64, m: f64) -> f64 {
    let t = theta.clamp(1e-9, 1.0 - 1e-9);
    let q1 = t / (2.0 - t);
    let q2 = 2.0 * t * t / (1.0 + t);
    let var = (t * (1.0 - t) + (n - 1.0) * (q1 - t * t) + (m - 1.0) * (q2 - t * t)) / (n * m);
    var.max(0.0).sqrt()
}

/// The new sample's rank sum over bins (mid-ranks within a bin), doubled to stay an
/// integer, and the ties' correction term `sum(t^3 - t)`.
struct RankSum {
    sum_new: f64,
    sum2_new: u64,
    tie_term: f64,
}

impl RankSum {
    fn of(totals: &[u64], new: &[u64]) -> Self {
        let (mut below, mut sum2, mut tie_term) = (0u64, 0u64, 0.0);
        for (t, k) in totals.iter().zip(new) {
            // Twice the mid-rank of the bin: 2 * below + t + 1.
            sum2 += k * (2 * below + t + 1);
            tie_term += (*t as f64).powi(3) - *t as f64;
            below += t;
        }
        RankSum {
            sum_new: sum2 as f64 / 2.0,
            sum2_new: sum2,
            tie_term,
        }
    }
}

/// `(P(S >= s), P(S <= s))` for the doubled rank sum `S` of `n` requests drawn without
/// replacement from bins of `totals` requests (the permutation distribution given the
/// ties), by counting the ways bin by bin.
fn exact_tails(totals: &[u64], n: u64, s_observed: u64) -> (f64, f64) {
    let n = n as usize;
    // ways[j][s]: ways to pick j requests so far with doubled rank sum s.
    let max_s: u64 = {
        let total: u64 = totals.iter().sum();
        2 * total * n as u64 + 1
    };
    let mut ways = vec![vec![0.0_f64; max_s as usize + 1]; n + 1];
    ways[0][0] = 1.0;
    let mut below = 0u64;
    for &t in totals {
        let rank2 = 2 * below + t + 1;
        let mut next = vec![vec![0.0_f64; max_s as usize + 1]; n + 1];
        for (j, row) in ways.iter().enumerate() {
            for (s, &w) in row.iter().enumerate() {
                if w == 0.0 {
                    continue;
                }
                for k in 0..=(t as usize).min(n - j) {
                    let s2 = s + k * rank2 as usize;
                    if s2 <= max_s as usize {
                        next[j + k][s2] += w * binomial(t, k as u64);
                    }
                }
            }
        }
        ways = next;
        below += t;
    }
    let all: f64 = ways[n].iter().sum();
    let at_least: f64 = ways[n][s_observed as usize..].iter().sum();
    let at_most: f64 = ways[n][..=s_observed as usize].iter().sum();
    (at_least / all, at_most / all)
}

fn binomial(n: u64, k: u64) -> f64 {
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

// --- one version against an absolute limit ----------------------------------------------

/// One share against a limit: its estimate, exact interval and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitTest {
    pub finding: Finding,
    pub count: f64,
    pub n: f64,
    pub share: f64,
    pub limit: f64,
    /// Clopper-Pearson interval at `1 - 2 alpha`.
    pub interval: [f64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_more_invocations: Option<u64>,
    pub why: String,
}

/// Is the share `count / n` beyond `limit`? Fail when the exact interval lies above it,
/// Pass when it lies at or below it, Inconclusive otherwise (or with no data, or input
/// that is not finite). `what` names the share in the explanation.
pub fn share_within(count: f64, n: f64, limit: f64, alpha: f64, what: &str) -> LimitTest {
    let mut out = LimitTest {
        finding: Finding::Inconclusive,
        count,
        n,
        share: f64::NAN,
        limit,
        interval: [f64::NAN, f64::NAN],
        needs_more_invocations: None,
        why: String::new(),
    };
    if ![count, n, limit].iter().all(|v| v.is_finite()) || count < 0.0 {
        out.why = format!("{what}: a count is not a finite number: nothing can be judged");
        return out;
    }
    if n < 1.0 {
        out.why = format!("{what}: no invocations yet");
        return out;
    }
    let (x, n_r) = (count.min(n).round(), n.round());
    out.share = x / n_r;
    out.interval = clopper_pearson(x, n_r, alpha);
    out.finding = if out.interval[0] > limit {
        Finding::Fail
    } else if out.interval[1] <= limit {
        Finding::Pass
    } else {
        Finding::Inconclusive
    };
    let range = format!(
        "{:.3}% (interval {:.3}%-{:.3}%)",
        out.share * 100.0,
        out.interval[0] * 100.0,
        out.interval[1] * 100.0
    );
    out.why = match out.finding {
        Finding::Fail => format!("{what} {range} is above {}%", limit * 100.0),
        Finding::Pass => format!("{what} {range} is within {}%", limit * 100.0),
        Finding::Inconclusive => {
            out.needs_more_invocations = limit_needs_more(x, n_r, limit, alpha);
            format!(
                "{what} {range} against {}%: the data cannot tell yet{}",
                limit * 100.0,
                more_text(out.needs_more_invocations)
            )
        }
    };
    out
}

/// At today's share, the invocations more after which the exact interval would likely
/// leave the limit's side it straddles.
fn limit_needs_more(x: f64, n: f64, limit: f64, alpha: f64) -> Option<u64> {
    let share = (x / n).clamp(1e-6, 1.0 - 1e-6);
    if (share - limit).abs() < 1e-12 {
        return None;
    }
    let z = normal_isf(alpha);
    let needed = z * z * share * (1.0 - share) / (share - limit).powi(2);
    (needed > n).then(|| (needed - n).ceil() as u64)
}

/// The exact binomial interval for `x` successes of `n`, each side at `alpha`.
pub fn clopper_pearson(x: f64, n: f64, alpha: f64) -> [f64; 2] {
    let lower = if x <= 0.0 {
        0.0
    } else {
        // P(X >= x | p) = alpha.
        solve_increasing(|p| beta_inc(x, n - x + 1.0, p), alpha)
    };
    let upper = if x >= n {
        1.0
    } else {
        // P(X <= x | p) = alpha, i.e. P(X >= x + 1 | p) = 1 - alpha.
        solve_increasing(|p| beta_inc(x + 1.0, n - x, p), 1.0 - alpha)
    };
    [lower, upper]
}

/// The `p` in (0, 1) with `f(p) = target`, for `f` increasing.
fn solve_increasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The natural logarithm of the gamma function (Lanczos, g = 7, 9 terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function `I_x(a, b)`, by its continued fraction
/// (modified Lentz), using the symmetry for faster convergence.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + numerator / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn normal_tail_and_quantile_match_tables() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.644_853_6), 0.05, 1e-6));
        assert!(close(normal_sf(-1.959_964), 0.975, 1e-6));
        assert!(normal_sf(40.0) < 1e-12);
        assert!(close(normal_isf(0.05), 1.644_853_6, 1e-5));
        assert!(close(normal_isf(0.5), 0.0, 1e-6));
    }

    #[test]
    fn incomplete_beta_and_exact_intervals_match_references() {
        // I_0.5(2, 3) = 11/16.
        assert!(close(beta_inc(2.0, 3.0, 0.5), 0.6875, 1e-10));
        // Clopper-Pearson 95% (2.5% each side) for 3 of 10: 0.0667-0.6525 (R binom.test).
        let [lo, hi] = clopper_pearson(3.0, 10.0, 0.025);
        assert!(
            close(lo, 0.066_739, 1e-5) && close(hi, 0.652_453, 1e-5),
            "{lo} {hi}"
        );
        // 0 of 100, one-sided 5%: upper 1 - 0.05^(1/100).
        let [lo, hi] = clopper_pearson(0.0, 100.0, 0.05);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 1.0 - 0.05_f64.powf(0.01), 1e-9));
    }

    const MARGIN: ErrorMargin = ErrorMargin {
        ratio: 1.5,
        increase: 0.0005,
    };

    #[test]
    fn a_tenfold_error_regression_fails_where_an_absolute_tolerance_let_it_pass() {
        // 100 of 100,000 against 100 of 10,000: 0.1% -> 1%.
        let t = error_rates((100.0, 100_000.0), (100.0, 10_000.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Fail, "{t:?}");
        assert!(t.p_worse.unwrap() < 1e-6);
        assert!(t.excess_interval[0] > 0.0);
    }

    #[test]
    fn zero_errors_on_the_old_side_are_not_certainty() {
        // Old 0/20 against new 5/100: the unpooled z-test failed this (p=0.033).
        let t = error_rates((0.0, 20.0), (5.0, 100.0), MARGIN, 0.05, 20.0);
        assert_ne!(t.finding, Finding::Fail, "{t:?}");
        assert!(t.p_worse.unwrap() > 0.05);
    }

    #[test]
    fn no_errors_anywhere_with_enough_traffic_passes_and_with_little_cannot_tell() {
        let t = error_rates((0.0, 50_000.0), (0.0, 20_000.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass, "{t:?}");
        let t = error_rates((0.0, 30.0), (0.0, 30.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Inconclusive, "{t:?}");
        assert!(t.needs_more_invocations.unwrap() > 1_000, "{t:?}");
        assert!(t.why.contains("needs about"));
    }

    #[test]
    fn one_rare_error_is_not_a_regression_but_nine_in_a_thousand_are() {
        // No error in 810 old invocations, one in 90 new ones: the score test alone
        // (z = 4.5) would fail it; the exact conditional test does not: the one error is
        // the new version's with probability 0.143 under the margin, mid-p 0.071.
        let t = error_rates((0.0, 810.0), (1.0, 90.0), MARGIN, 0.05, 20.0);
        assert_ne!(t.finding, Finding::Fail, "{t:?}");
        assert!(
            close(t.exact_p_worse.unwrap(), 0.5 * 135.0 / 945.0, 1e-9),
            "{t:?}"
        );
        // 0.1% -> 1% at 8,100 against 900: 8 errors against 9.
        let t = error_rates((8.0, 8100.0), (9.0, 900.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Fail, "{t:?}");
    }

    #[test]
    fn errors_only_on_the_old_version_pass() {
        let t = error_rates((300.0, 1000.0), (0.0, 1000.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass);
    }

    #[test]
    fn small_samples_and_non_finite_counts_are_inconclusive() {
        let t = error_rates((0.0, 5.0), (3.0, 5.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        assert!(t.why.contains("too few"));
        let t = error_rates((f64::NAN, 500.0), (3.0, 500.0), MARGIN, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        assert!(t.why.contains("finite"));
    }

    /// The false-fail rate of the error test at its level, on simulated traffic with no
    /// regression at all: 20 old against 200 new invocations failed 34% of the time
    /// with the unpooled z-test.
    #[test]
    fn the_error_test_keeps_its_level_at_small_and_unbalanced_counts() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (n_old, n_new, rate) in [(20, 200, 0.01), (1000, 100, 0.02), (10_000, 1000, 0.001)] {
            let draw = |rng: &mut fastrand::Rng, n: u32| {
                (0..n).filter(|_| rng.f64() < rate).count() as f64
            };
            let trials = 2000;
            let fails = (0..trials)
                .filter(|_| {
                    let old = (draw(&mut rng, n_old), f64::from(n_old));
                    let new = (draw(&mut rng, n_new), f64::from(n_new));
                    error_rates(old, new, MARGIN, 0.05, 20.0).finding == Finding::Fail
                })
                .count();
            assert!(
                fails * 100 <= trials * 5,
                "{n_old}/{n_new} at {rate}: {fails} of {trials}"
            );
        }
    }

    #[test]
    fn the_rank_sum_of_bins_uses_mid_ranks() {
        // Bins of 2, 3, 1 requests; the new sample has 1, 2, 0 of them.
        let r = RankSum::of(&[2, 3, 1], &[1, 2, 0]);
        // Mid-ranks 1.5, 4, 6: 1.5 + 2 * 4 = 9.5.
        assert_eq!(r.sum_new, 9.5);
        assert_eq!(r.tie_term, (8.0 - 2.0) + (27.0 - 3.0));
    }

    #[test]
    fn exact_tails_with_ties_match_a_full_enumeration() {
        // Old [100, 100, 100, 100] against new [120, 150, 150, 150] at 20%: scaled, the new
        // values are 100, 125, 125, 125, so bins (<=100, >100) hold old 4 + new 1, new 3.
        let t = slower_share(&[4.0, 0.0], &[1.0, 3.0], 20.0, 0.05, 1.0);
        assert_eq!(t.method, Some("exact (ties by bin)"));
        // C(8,4) = 70 arrangements; the rank sum is at least the observed one when the
        // three requests of the upper bin are new: 5 of 70 (the normal approximation
        // said 0.030).
        assert!(close(t.p_worse.unwrap(), 5.0 / 70.0, 1e-12), "{t:?}");
        assert_eq!(t.finding, Finding::Inconclusive);
        // One old period against five: with no tie, the smallest p is 1/6.
        let t = slower_share(&[1.0, 0.0], &[0.0, 5.0], 0.0, 0.05, 1.0);
        assert!(close(t.p_worse.unwrap(), 1.0 / 6.0, 1e-12));
        assert_ne!(t.finding, Finding::Fail);
    }

    #[test]
    fn exact_and_normal_agree_where_both_apply() {
        let old = [10.0, 12.0, 8.0, 0.0];
        let new = [2.0, 6.0, 9.0, 7.0];
        let exact = slower_share(&old, &new, 0.0, 0.05, 1.0);
        assert_eq!(exact.method, Some("exact (ties by bin)"));
        let (p_exact, _) = exact_tails(
            &[12, 18, 17, 7],
            24,
            RankSum::of(&[12, 18, 17, 7], &[2, 6, 9, 7]).sum2_new,
        );
        assert!(close(exact.p_worse.unwrap(), p_exact, 1e-12));
        // The same proportions at 20x the size go to the normal approximation.
        let big = |v: &[f64]| v.iter().map(|c| c * 20.0).collect::<Vec<_>>();
        let normal = slower_share(&big(&old), &big(&new), 0.0, 0.05, 1.0);
        assert_eq!(normal.method, Some("normal (tie-corrected)"));
        assert_eq!(normal.finding, Finding::Fail);
        assert!(close(
            exact.slower_probability,
            normal.slower_probability,
            1e-12
        ));
    }

    #[test]
    fn a_clear_slowdown_fails_a_clear_equal_passes_and_thin_data_cannot_tell() {
        let slow = slower_share(
            &[300.0, 300.0, 300.0, 30.0],
            &[2.0, 10.0, 40.0, 48.0],
            20.0,
            0.05,
            10.0,
        );
        assert_eq!(slow.finding, Finding::Fail, "{slow:?}");
        assert!(slow.slower_probability_interval[0] > 0.5);
        let same = slower_share(
            &[300.0, 300.0, 300.0, 30.0],
            &[50.0, 30.0, 18.0, 2.0],
            20.0,
            0.05,
            10.0,
        );
        assert_eq!(same.finding, Finding::Pass, "{same:?}");
        let thin = slower_share(
            &[9.0, 9.0, 9.0, 1.0],
            &[1.0, 1.0, 1.0, 1.0],
            20.0,
            0.05,
            1.0,
        );
        assert_eq!(thin.finding, Finding::Inconclusive, "{thin:?}");
        assert!(thin.why.contains("cannot tell"));
    }

    #[test]
    fn non_finite_counts_and_one_bin_are_inconclusive() {
        let t = slower_share(&[f64::NAN, 1.0], &[1.0, 1.0], 20.0, 0.05, 1.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        let t = slower_share(&[500.0, 0.0], &[100.0, 0.0], 20.0, 0.05, 1.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        assert!(t.why.contains("one bin"));
    }

    #[test]
    fn a_bake_share_is_judged_on_its_interval() {
        // A true 3% rate against a 5% limit, seen on 10 invocations: 1 error is not a
        // Fail (the point estimate 10% was, 26% of the time).
        let t = share_within(1.0, 10.0, 0.05, 0.05, "error rate");
        assert_eq!(t.finding, Finding::Inconclusive, "{t:?}");
        let t = share_within(30.0, 1000.0, 0.05, 0.05, "error rate");
        assert_eq!(t.finding, Finding::Pass);
        let t = share_within(90.0, 1000.0, 0.05, 0.05, "error rate");
        assert_eq!(t.finding, Finding::Fail);
        let t = share_within(0.0, 0.0, 0.05, 0.05, "error rate");
        assert_eq!(t.finding, Finding::Inconclusive);
        let t = share_within(f64::INFINITY, 10.0, 0.05, 0.05, "error rate");
        assert_eq!(t.finding, Finding::Inconclusive);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
