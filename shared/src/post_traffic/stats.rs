//! The statistics behind the canary comparison: a one-sided two-proportion z-test for
//! error rates and a one-sided Mann-Whitney U test for per-period latency series.
//!
//! Both ask "is the new version worse than the old one by more than the tolerance?" and
//! end in [`Finding::Pass`], [`Finding::Fail`] or [`Finding::Inconclusive`] (too little
//! data to say), with the numbers that led there.

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
/// Uses the complementary error function approximation with fractional error below
/// 1.2e-7 everywhere, plenty for significance levels of 0.001 and above.
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

/// The two-proportion test's inputs and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProportionTest {
    pub finding: Finding,
    pub old_rate: f64,
    pub new_rate: f64,
    /// `new_rate - old_rate`.
    pub difference: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub why: String,
}

/// Is the new version's error rate higher than the old one's by more than `tolerance`
/// (an absolute difference of rates, e.g. 0.01 = one percentage point)?
///
/// H0: `p_new - p_old <= tolerance`; H1: greater. Unpooled standard error, so a version
/// without errors does not hide the other's variance. Fail when the one-sided p-value
/// is below `alpha`. Either side with fewer than `min_n` trials: Inconclusive. When both
/// rates are 0 or 1 there is no variance: the observed difference decides outright.
pub fn two_proportion(
    old: (f64, f64),
    new: (f64, f64),
    tolerance: f64,
    alpha: f64,
    min_n: f64,
) -> ProportionTest {
    let rate = |(errors, n): (f64, f64)| {
        if n > 0.0 {
            (errors / n).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let (p_old, p_new) = (rate(old), rate(new));
    let (n_old, n_new) = (old.1, new.1);
    let mut out = ProportionTest {
        finding: Finding::Inconclusive,
        old_rate: p_old,
        new_rate: p_new,
        difference: p_new - p_old,
        z: None,
        p_value: None,
        why: String::new(),
    };
    if n_old < min_n.max(1.0) || n_new < min_n.max(1.0) {
        out.why = format!(
            "too few invocations to compare (old {n_old}, new {n_new}; at least {min_n} each)"
        );
        return out;
    }
    let se = (p_old * (1.0 - p_old) / n_old + p_new * (1.0 - p_new) / n_new).sqrt();
    let excess = out.difference - tolerance;
    if se == 0.0 {
        out.finding = if excess > 0.0 {
            Finding::Fail
        } else {
            Finding::Pass
        };
        out.p_value = Some(if excess > 0.0 { 0.0 } else { 1.0 });
        out.why = "no variance in either rate: the observed difference decides".into();
        return out;
    }
    let z = excess / se;
    let p = normal_sf(z);
    out.z = Some(z);
    out.p_value = Some(p);
    if p < alpha {
        out.finding = Finding::Fail;
        out.why = format!(
            "the new error rate exceeds the old one by more than {tolerance} (p={p:.4} < {alpha})"
        );
    } else {
        out.finding = Finding::Pass;
        out.why = format!("no significant increase beyond {tolerance} (p={p:.4})");
    }
    out
}

/// The Mann-Whitney test's inputs and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankTest {
    pub finding: Finding,
    pub n_old: usize,
    pub n_new: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_old: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_new: Option<f64>,
    /// U statistic of the new sample against the (scaled) old one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub u: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// `exact` (no ties, small samples) or `normal` (tie-corrected, continuity-corrected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    pub why: String,
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

/// Is the new series stochastically larger than the old one scaled by
/// `1 + tolerance_pct/100`? One-sided Mann-Whitney U.
///
/// Either series shorter than `min_n`: Inconclusive. Without ties and with both samples
/// of at most 20 the p-value is exact; otherwise the tie-corrected normal approximation
/// with continuity correction. All values equal: no evidence of a difference, Pass.
pub fn mann_whitney(
    old: &[f64],
    new: &[f64],
    tolerance_pct: f64,
    alpha: f64,
    min_n: usize,
) -> RankTest {
    let old: Vec<f64> = old.iter().copied().filter(|v| v.is_finite()).collect();
    let new: Vec<f64> = new.iter().copied().filter(|v| v.is_finite()).collect();
    let mut out = RankTest {
        finding: Finding::Inconclusive,
        n_old: old.len(),
        n_new: new.len(),
        median_old: median(&old),
        median_new: median(&new),
        u: None,
        p_value: None,
        method: None,
        why: String::new(),
    };
    let min_n = min_n.max(1);
    if old.len() < min_n || new.len() < min_n {
        out.why = format!(
            "too few periods to compare (old {}, new {}; at least {min_n} each)",
            old.len(),
            new.len()
        );
        return out;
    }
    let (rank_sum_new, tie_term) = rank_sum(&old, &new, 1.0 + tolerance_pct / 100.0);
    let ties = tie_term > 0.0;
    let (n1, n2) = (new.len() as f64, old.len() as f64);
    let total = (old.len() + new.len()) as f64;
    let u = rank_sum_new - n1 * (n1 + 1.0) / 2.0;
    out.u = Some(u);
    let p = if !ties && new.len() <= 20 && old.len() <= 20 {
        out.method = Some("exact");
        exact_upper_tail(new.len(), old.len(), u.round() as usize)
    } else {
        out.method = Some("normal");
        let mean = n1 * n2 / 2.0;
        let var = n1 * n2 / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        if var <= 0.0 {
            out.finding = Finding::Pass;
            out.p_value = Some(1.0);
            out.why = "every period has the same value: no difference".into();
            return out;
        }
        normal_sf((u - mean - 0.5) / var.sqrt())
    };
    out.p_value = Some(p);
    if p < alpha {
        out.finding = Finding::Fail;
        out.why = format!(
            "the new version is slower than the old one by more than {tolerance_pct}% (p={p:.4} < {alpha})"
        );
    } else {
        out.finding = Finding::Pass;
        out.why = format!("no significant slowdown beyond {tolerance_pct}% (p={p:.4})");
    }
    out
}

/// The new sample's rank sum when ranked together with the old one scaled by `scale`
/// (average ranks for ties), and the ties' correction term, Σ(t³ − t) over tie groups.
fn rank_sum(old: &[f64], new: &[f64], scale: f64) -> (f64, f64) {
    // (value, is_new)
    let mut all: Vec<(f64, bool)> = old
        .iter()
        .map(|v| (v * scale, false))
        .chain(new.iter().map(|v| (*v, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_new = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_new += all[i..=j].iter().filter(|x| x.1).count() as f64 * average_rank;
        i = j + 1;
    }
    (rank_sum_new, tie_term)
}

/// `P(U >= u)` for samples of sizes `m` and `n` without ties, by counting the
/// arrangements that give each U (the classic recurrence, built up from small sizes).
fn exact_upper_tail(m: usize, n: usize, u: usize) -> f64 {
    let max_u = m * n;
    // counts[a][b] = distribution of U for sizes (a, b), as a vector over u.
    let mut counts: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n + 1]; m + 1];
    for (a, row) in counts.iter_mut().enumerate() {
        for (b, cell) in row.iter_mut().enumerate() {
            if a == 0 || b == 0 {
                *cell = vec![1.0];
            } else {
                *cell = vec![0.0; a * b + 1];
            }
        }
    }
    for a in 1..=m {
        for b in 1..=n {
            let mut dist = vec![0.0; a * b + 1];
            // The largest value is from the first sample (it beats all b) or the second.
            for (k, c) in counts[a - 1][b].iter().enumerate() {
                dist[k + b] += c;
            }
            for (k, c) in counts[a][b - 1].iter().enumerate() {
                dist[k] += c;
            }
            counts[a][b] = dist;
        }
    }
    let dist = &counts[m][n];
    let all: f64 = dist.iter().sum();
    let tail: f64 = dist.iter().skip(u.min(max_u + 1)).sum();
    tail / all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn normal_tail_matches_tables() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.644_853_6), 0.05, 1e-6));
        assert!(close(normal_sf(1.959_964), 0.025, 1e-6));
        assert!(close(normal_sf(-1.959_964), 0.975, 1e-6));
        assert!(normal_sf(40.0) < 1e-12);
    }

    #[test]
    fn proportion_regression_fails() {
        let t = two_proportion((5.0, 1000.0), (80.0, 1000.0), 0.01, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Fail, "{t:?}");
        assert!(t.p_value.unwrap() < 0.001);
    }

    #[test]
    fn proportion_errors_only_on_old_pass() {
        let t = two_proportion((300.0, 1000.0), (0.0, 1000.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass);
        assert!(t.difference < 0.0);
    }

    #[test]
    fn proportion_within_tolerance_passes() {
        // 1.5% vs 1%: +0.5 points, tolerance 1 point.
        let t = two_proportion((10.0, 1000.0), (15.0, 1000.0), 0.01, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass);
        // Same difference, no tolerance and huge samples: significant.
        let t = two_proportion((1000.0, 100_000.0), (1500.0, 100_000.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Fail);
    }

    #[test]
    fn proportion_small_samples_are_inconclusive() {
        let t = two_proportion((0.0, 5.0), (3.0, 5.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        // One-sided data: the old version saw no traffic at all.
        let t = two_proportion((0.0, 0.0), (3.0, 500.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Inconclusive);
        assert!(t.why.contains("too few"));
    }

    #[test]
    fn proportion_zero_variance_decides_on_the_difference() {
        let t = two_proportion((0.0, 100.0), (0.0, 100.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass);
        let t = two_proportion((0.0, 100.0), (100.0, 100.0), 0.01, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Fail);
        let t = two_proportion((100.0, 100.0), (100.0, 100.0), 0.0, 0.05, 20.0);
        assert_eq!(t.finding, Finding::Pass);
    }

    #[test]
    fn proportion_clamps_impossible_counts() {
        // More errors than invocations (metrics from different periods): rate 1.
        let t = two_proportion((0.0, 50.0), (80.0, 50.0), 0.0, 0.05, 20.0);
        assert_eq!(t.new_rate, 1.0);
        assert_eq!(t.finding, Finding::Fail);
    }

    #[test]
    fn rank_test_detects_a_slowdown() {
        let old = [100.0, 110.0, 95.0, 105.0, 98.0, 102.0];
        let new = [400.0, 420.0, 390.0, 410.0, 405.0, 399.0];
        let t = mann_whitney(&old, &new, 20.0, 0.05, 4);
        assert_eq!(t.finding, Finding::Fail, "{t:?}");
        assert_eq!(t.method, Some("exact"));
        // All 36 pairs favour "new": U = 36, p = 1 / C(12, 6).
        assert_eq!(t.u, Some(36.0));
        assert!(close(t.p_value.unwrap(), 1.0 / 924.0, 1e-12));
    }

    #[test]
    fn rank_test_within_tolerance_passes() {
        let old = [100.0, 110.0, 95.0, 105.0, 98.0];
        let new = [110.0, 115.0, 104.0, 112.0, 108.0];
        assert_eq!(
            mann_whitney(&old, &new, 20.0, 0.05, 4).finding,
            Finding::Pass
        );
        // Without tolerance the same +10% is detected.
        assert_eq!(
            mann_whitney(&old, &new, 0.0, 0.05, 4).finding,
            Finding::Fail
        );
    }

    #[test]
    fn rank_test_faster_new_version_passes() {
        let old = [300.0, 310.0, 305.0, 290.0];
        let new = [100.0, 110.0, 105.0, 90.0];
        let t = mann_whitney(&old, &new, 0.0, 0.05, 4);
        assert_eq!(t.finding, Finding::Pass);
        assert_eq!(t.u, Some(0.0));
        assert!(close(t.p_value.unwrap(), 1.0, 1e-12));
    }

    #[test]
    fn rank_test_tiny_and_empty_samples_are_inconclusive() {
        let t = mann_whitney(&[], &[1.0, 2.0], 0.0, 0.05, 3);
        assert_eq!(t.finding, Finding::Inconclusive);
        let t = mann_whitney(&[1.0, 2.0, 3.0], &[9.0, 9.5], 0.0, 0.05, 3);
        assert_eq!(t.finding, Finding::Inconclusive);
        // Two against two can never reach p < 0.05 (the smallest p is 1/6): a minimum
        // below what the level allows still cannot produce a false Fail.
        let t = mann_whitney(&[1.0, 2.0], &[9.0, 9.5], 0.0, 0.05, 1);
        assert_eq!(t.finding, Finding::Pass);
        assert!(close(t.p_value.unwrap(), 1.0 / 6.0, 1e-12));
    }

    #[test]
    fn rank_test_ties_and_zero_variance() {
        let same = [100.0; 6];
        let t = mann_whitney(&same, &same, 0.0, 0.05, 4);
        assert_eq!(t.finding, Finding::Pass);
        assert_eq!(t.p_value, Some(1.0));
        // Ties across samples use the normal approximation with tie correction.
        let old = [100.0, 100.0, 100.0, 100.0, 200.0];
        let new = [100.0, 200.0, 200.0, 200.0, 200.0];
        let t = mann_whitney(&old, &new, 0.0, 0.05, 4);
        assert_eq!(t.method, Some("normal"));
        assert_eq!(t.finding, Finding::Fail, "{t:?}");
        // NaN periods are ignored rather than ranked.
        let t = mann_whitney(
            &[f64::NAN, 1.0, 2.0, 3.0, 4.0],
            &[1.0, 2.0, 3.0, 4.0],
            0.0,
            0.05,
            4,
        );
        assert_eq!(t.n_old, 4);
    }

    #[test]
    fn exact_distribution_is_symmetric_and_sums_to_one() {
        assert!(close(exact_upper_tail(3, 4, 0), 1.0, 1e-12));
        assert!(close(exact_upper_tail(3, 3, 9), 1.0 / 20.0, 1e-12));
        // P(U >= 7) == P(U <= 5) for sizes 3,4 (mean 6).
        let upper = exact_upper_tail(3, 4, 7);
        let lower = 1.0 - exact_upper_tail(3, 4, 6);
        assert!(close(upper, lower, 1e-12));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
