//! Group-relative advantage estimators.
//!
//! Input is columnar: `scores` for all responses and `offsets` (length groups + 1) marking where
//! each group starts, as in CSR. A NaN score means "no verdict": it is left out of its group's
//! statistics and gets advantage 0. For a group, let `r_i` be the valid scores, `n` their
//! number, `mean` their mean and `std` their *sample* standard deviation (divisor n - 1, as
//! `torch.std` and TRL use):
//!
//! - `grpo`:      A_i = (r_i - mean) / (std + eps)                     (DeepSeekMath GRPO)
//! - `dr_grpo`:   A_i = r_i - mean                                     (Dr. GRPO: no std scaling)
//! - `rloo`:      A_i = r_i - mean_{j != i} r_j = n / (n - 1) * (r_i - mean)   (leave-one-out)
//! - `batch_std`: A_i = (r_i - mean) / (std_batch + eps), with std_batch the sample std of all
//!   valid scores in the call (TRL `scale_rewards="batch"`)
//!
//! A group with fewer than two valid scores, or whose valid scores are all equal, carries no
//! learning signal: every advantage in it is exactly 0 and the group is counted as degenerate.
use std::str::FromStr;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Grpo,
    DrGrpo,
    Rloo,
    BatchStd,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Grpo, Method::DrGrpo, Method::Rloo, Method::BatchStd];

    pub fn name(self) -> &'static str {
        match self {
            Method::Grpo => "grpo",
            Method::DrGrpo => "dr_grpo",
            Method::Rloo => "rloo",
            Method::BatchStd => "batch_std",
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "grpo" => Ok(Method::Grpo),
            "dr_grpo" | "drgrpo" => Ok(Method::DrGrpo),
            "rloo" => Ok(Method::Rloo),
            "batch_std" => Ok(Method::BatchStd),
            _ => Err(Error::Config(format!(
                "unknown advantage method {s:?}; expected one of grpo, dr_grpo, rloo, batch_std"
            ))),
        }
    }
}

/// The default `eps` added to the std (TRL uses the same 1e-4).
pub const DEFAULT_EPS: f64 = 1e-4;

/// Two scores closer than this count as equal when deciding that a group has zero variance.
const ZERO_SPREAD: f64 = 1e-12;

/// Result of one estimator call.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    pub values: Vec<f64>,
    /// Groups with < 2 valid scores or zero spread (all advantages 0).
    pub degenerate_groups: usize,
    /// Responses without a verdict (NaN score), given advantage 0.
    pub unscored: usize,
}

/// Checks that `offsets` describe `n` responses: starts at 0, never decreases, ends at `n`.
pub fn check_offsets(offsets: &[i64], n: usize) -> Result<(), Error> {
    if offsets.first() != Some(&0) {
        return Err(Error::Config("offsets must start with 0".into()));
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::Config("offsets must be non-decreasing".into()));
    }
    if *offsets.last().unwrap_or(&0) != n as i64 {
        return Err(Error::Config(format!(
            "offsets end at {} but there are {n} scores",
            offsets.last().unwrap_or(&0)
        )));
    }
    Ok(())
}

/// A power of two near the largest magnitude of `values` (1 when they are all 0 or
/// subnormal). Dividing by a power of two is exact, so statistics computed on `v / scale` are
/// bit for bit those computed on `v` wherever the latter do not overflow, and they never
/// overflow: scaled values are below 2 in magnitude, so sums and squares stay small.
pub fn pow2_scale(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, |m, v| m.max(v.abs()));
    pow2_at_or_below(max)
}

/// The largest power of two at or below `x` (1 for 0, subnormals, NaN and infinity).
pub fn pow2_at_or_below(x: f64) -> f64 {
    let exp_bits = (x.to_bits() >> 52) & 0x7ff;
    if exp_bits == 0 || exp_bits == 0x7ff {
        return 1.0;
    }
    f64::from_bits(exp_bits << 52)
}

/// Mean and sample std of the valid (non-NaN) values divided by `scale`, and their count.
fn scaled_mean_std(values: &[f64], scale: f64) -> (f64, f64, usize) {
    // Multiplying by the reciprocal of a power of two rounds exactly as dividing by it does
    // (both are the one correctly rounded v * 2^-k), and a product is several times cheaper.
    let inv = 1.0 / scale;
    let mut n = 0usize;
    let mut sum = 0.0;
    for &v in values.iter().filter(|v| !v.is_nan()) {
        n += 1;
        sum += v * inv;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = sum / n as f64;
    if n < 2 {
        return (mean, f64::NAN, n);
    }
    let ss: f64 = values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| (v * inv - mean) * (v * inv - mean))
        .sum();
    (mean, (ss / (n - 1) as f64).sqrt(), n)
}

/// Mean and sample std of the non-NaN values, with their count. Computed on scaled values
/// (`pow2_scale`), so scores near 1e160 or 1e300 give their true std, not infinity.
pub fn mean_std(values: &[f64]) -> (f64, f64, usize) {
    let scale = pow2_scale(values.iter().copied().filter(|v| !v.is_nan()));
    let (mean, std, n) = scaled_mean_std(values, scale);
    (mean * scale, std * scale, n)
}

fn spread(values: &[f64]) -> f64 {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values.iter().filter(|v| !v.is_nan()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    hi - lo
}

pub fn compute(
    scores: &[f64],
    offsets: &[i64],
    method: Method,
    eps: f64,
) -> Result<Advantages, Error> {
    check_offsets(offsets, scores.len())?;
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::Config(format!(
            "eps must be finite and >= 0, got {eps}"
        )));
    }
    if let Some(bad) = scores.iter().find(|s| s.is_infinite()) {
        return Err(Error::Config(format!(
            "scores must be finite or NaN, got {bad}"
        )));
    }
    // Everything below works on scores divided by a power of two (exact), so that large
    // scores (`--any-score`) neither overflow the squares nor lose the group's signal.
    let (batch_scale, batch_std) = if method == Method::BatchStd {
        let scale = pow2_scale(scores.iter().copied().filter(|v| !v.is_nan()));
        (scale, scaled_mean_std(scores, scale).1)
    } else {
        (1.0, f64::NAN)
    };
    let mut values = vec![0.0; scores.len()];
    let mut degenerate_groups = 0;
    let unscored = scores.iter().filter(|s| s.is_nan()).count();
    for w in offsets.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        let group = &scores[a..b];
        let scale = pow2_scale(group.iter().copied().filter(|v| !v.is_nan()));
        let (mean, std, n) = scaled_mean_std(group, scale);
        if n < 2 || spread(group) <= ZERO_SPREAD {
            degenerate_groups += 1;
            continue;
        }
        // (r - m) / (s + eps) = (r/k - m/k) / (s/k + eps/k) for the scale k; likewise below.
        let (mul, div) = match method {
            Method::Grpo => (1.0, std + eps / scale),
            Method::DrGrpo => (scale, 1.0),
            Method::Rloo => (scale * (n as f64 / (n - 1) as f64), 1.0),
            Method::BatchStd => (scale / batch_scale, batch_std + eps / batch_scale),
        };
        let inv = 1.0 / scale; // exact: see scaled_mean_std
        for (i, (out, &r)) in values[a..b].iter_mut().zip(group).enumerate() {
            if !r.is_nan() {
                *out = (r * inv - mean) * mul / div;
                if !out.is_finite() {
                    return Err(Error::Config(format!(
                        "the {} advantage of response {} overflows a 64-bit float (scores \
                         spread over more than ~1.8e308); rescale the scores",
                        method.name(),
                        a + i
                    )));
                }
            }
        }
    }
    Ok(Advantages {
        values,
        degenerate_groups,
        unscored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adv(scores: &[f64], offsets: &[i64], m: Method) -> Advantages {
        compute(scores, offsets, m, 0.0).unwrap()
    }

    #[test]
    fn grpo_matches_formula() {
        let a = adv(&[1.0, 0.0, 0.0, 1.0], &[0, 4], Method::Grpo);
        let std = (1.0f64 / 3.0).sqrt(); // sample std of [1,0,0,1]
        let expect = 0.5 / std;
        assert!((a.values[0] - expect).abs() < 1e-12);
        assert!((a.values[1] + expect).abs() < 1e-12);
    }

    #[test]
    fn rloo_is_leave_one_out() {
        let s = [1.0, 0.0, 0.5];
        let a = adv(&s, &[0, 3], Method::Rloo);
        for i in 0..3 {
            let others: f64 = (0..3).filter(|&j| j != i).map(|j| s[j]).sum::<f64>() / 2.0;
            assert!((a.values[i] - (s[i] - others)).abs() < 1e-12);
        }
    }

    #[test]
    fn degenerate_groups_get_zero_and_are_counted() {
        let a = adv(
            &[1.0, 1.0, 0.3, f64::NAN, 0.0, 1.0],
            &[0, 2, 3, 4, 6],
            Method::Grpo,
        );
        assert_eq!(a.values[..4], [0.0, 0.0, 0.0, 0.0]);
        assert_eq!(a.degenerate_groups, 3); // equal pair, single, only-NaN
        assert_eq!(a.unscored, 1);
        assert!(a.values[4] < 0.0 && a.values[5] > 0.0);
    }

    #[test]
    fn nan_scores_are_excluded_from_their_group() {
        let a = adv(&[1.0, f64::NAN, 0.0], &[0, 3], Method::DrGrpo);
        assert_eq!(a.values, vec![0.5, 0.0, -0.5]);
    }

    #[test]
    fn bad_offsets_are_errors() {
        assert!(compute(&[1.0], &[0, 2], Method::Grpo, 0.0).is_err());
        assert!(compute(&[1.0], &[1, 1], Method::Grpo, 0.0).is_err());
        assert!(compute(&[1.0, 2.0], &[0, 2, 1, 2], Method::Grpo, 0.0).is_err());
        assert!("nope".parse::<Method>().is_err());
    }

    fn groups() -> impl Strategy<Value = (Vec<f64>, Vec<i64>)> {
        prop::collection::vec(
            prop::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0], 1..10),
            1..20,
        )
        .prop_map(|gs| {
            let mut offsets = vec![0i64];
            let mut scores = vec![];
            for g in gs {
                scores.extend(&g);
                offsets.push(scores.len() as i64);
            }
            (scores, offsets)
        })
    }

    proptest! {
        #[test]
        fn advantages_sum_to_zero_per_group((scores, offsets) in groups()) {
            for m in Method::ALL {
                let a = compute(&scores, &offsets, m, DEFAULT_EPS).unwrap();
                for w in offsets.windows(2) {
                    let s: f64 = a.values[w[0] as usize..w[1] as usize].iter().sum();
                    prop_assert!(s.abs() < 1e-9, "{m:?} {s}");
                }
            }
        }

        #[test]
        fn grpo_advantages_have_unit_sample_std((scores, offsets) in groups()) {
            let a = compute(&scores, &offsets, Method::Grpo, 0.0).unwrap();
            for w in offsets.windows(2) {
                let g = &a.values[w[0] as usize..w[1] as usize];
                let (_, std, n) = mean_std(g);
                if n >= 2 && spread(&scores[w[0] as usize..w[1] as usize]) > 1e-9 {
                    prop_assert!((std - 1.0).abs() < 1e-6, "{std}");
                }
            }
        }

        #[test]
        fn order_within_group_does_not_matter((scores, offsets) in groups()) {
            let a = compute(&scores, &offsets, Method::Rloo, DEFAULT_EPS).unwrap();
            let mut rev = scores.clone();
            for w in offsets.windows(2) {
                rev[w[0] as usize..w[1] as usize].reverse();
            }
            let b = compute(&rev, &offsets, Method::Rloo, DEFAULT_EPS).unwrap();
            for w in offsets.windows(2) {
                let (x, y) = (w[0] as usize, w[1] as usize);
                for k in 0..(y - x) {
                    prop_assert!((a.values[x + k] - b.values[y - 1 - k]).abs() < 1e-12);
                }
            }
        }
    }
}
