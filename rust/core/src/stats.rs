//! Group statistics, accumulated batch by batch so a file of any size is summarised in one pass.
use std::collections::BTreeMap;

use crate::advantage::{self, Method};
use crate::batch::GroupColumns;
use crate::error::Error;

/// Per-group summary arrays (NaN where a group has no valid score; std NaN below two).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerGroup {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub valid: Vec<u32>,
}

pub fn per_group(scores: &[f64], offsets: &[i64]) -> Result<PerGroup, Error> {
    advantage::check_offsets(offsets, scores.len())?;
    let mut out = PerGroup::default();
    for w in offsets.windows(2) {
        let g = &scores[w[0] as usize..w[1] as usize];
        let (mean, std, n) = advantage::mean_std(g);
        let valid = g.iter().filter(|v| !v.is_nan());
        let min = valid.clone().fold(f64::NAN, |a, &b| a.min(b));
        let max = valid.fold(f64::NAN, |a, &b| a.max(b));
        out.mean.push(mean);
        out.std.push(std);
        out.min.push(min);
        out.max.push(max);
        out.valid.push(n as u32);
    }
    Ok(out)
}

/// Running mean/variance (Welford), exact to merge across batches. The running values are
/// kept divided by a power of two (`scale`, raised when a larger value arrives), so squares of
/// scores near 1e160 do not overflow; for ordinary values the scale stays 1 and nothing changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: u64,
    /// Mean and sum of squared deviations, divided by `scale` and `scale^2`.
    mean: f64,
    m2: f64,
    scale: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            scale: 1.0,
        }
    }
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        if x.abs() >= 2.0 * self.scale && x.is_finite() {
            let scale = advantage::pow2_at_or_below(x.abs());
            let ratio = self.scale / scale;
            self.mean *= ratio;
            self.m2 *= ratio * ratio;
            self.scale = scale;
        }
        let x = x / self.scale;
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn mean_or_nan(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.mean * self.scale
        }
    }

    /// Population variance of everything pushed (NaN when empty; infinite only when the true
    /// value is beyond f64).
    pub fn variance(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.m2 / self.n as f64 * self.scale * self.scale
        }
    }

    /// Population standard deviation of everything pushed (NaN when empty).
    pub fn std(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            (self.m2 / self.n as f64).sqrt() * self.scale
        }
    }
}

/// Everything `grpo-fast stats` reports about a set of groups.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub groups: u64,
    pub responses: u64,
    pub group_sizes: BTreeMap<usize, u64>,
    /// Responses with a score or a `correct` flag.
    pub verified: u64,
    pub scored: u64,
    pub passed: u64,
    pub score: Moments,
    pub text_bytes: Moments,
    /// Groups with >= 2 valid scores that are all equal: no learning signal.
    pub zero_std_groups: u64,
    /// Groups with fewer than two valid scores.
    pub small_groups: u64,
    pub group_std: Moments,
    pub advantages: BTreeMap<&'static str, Moments>,
}

impl Summary {
    pub fn add(&mut self, cols: &GroupColumns, eps: f64) -> Result<(), Error> {
        let stats = per_group(&cols.scores, &cols.offsets)?;
        self.groups += (cols.offsets.len().saturating_sub(1)) as u64;
        self.responses += cols.num_responses() as u64;
        for w in cols.offsets.windows(2) {
            *self.group_sizes.entry((w[1] - w[0]) as usize).or_default() += 1;
        }
        for ((&s, &c), &t) in cols.scores.iter().zip(&cols.correct).zip(&cols.text_bytes) {
            if !s.is_nan() || c >= 0 {
                self.verified += 1;
            }
            if !s.is_nan() {
                self.scored += 1;
                self.score.push(s);
            }
            if c == 1 || (c < 0 && s == 1.0) {
                self.passed += 1;
            }
            self.text_bytes.push(f64::from(t));
        }
        for g in 0..stats.mean.len() {
            if stats.valid[g] < 2 {
                self.small_groups += 1;
            } else {
                self.group_std.push(stats.std[g]);
                if stats.max[g] - stats.min[g] <= 1e-12 {
                    self.zero_std_groups += 1;
                }
            }
        }
        for m in Method::ALL {
            let adv = advantage::compute(&cols.scores, &cols.offsets, m, eps)?;
            let acc = self.advantages.entry(m.name()).or_default();
            for (a, s) in adv.values.iter().zip(&cols.scores) {
                if !s.is_nan() {
                    acc.push(*a);
                }
            }
        }
        Ok(())
    }

    pub fn pass_rate(&self) -> f64 {
        ratio(self.passed, self.verified)
    }

    pub fn verification_rate(&self) -> f64 {
        ratio(self.verified, self.responses)
    }

    /// Fraction of groups (with >= 2 valid scores) that have zero spread.
    pub fn zero_std_fraction(&self) -> f64 {
        ratio(
            self.zero_std_groups,
            self.groups.saturating_sub(self.small_groups),
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ResponseStat;

    fn rs(score: f64, correct: i8) -> ResponseStat {
        ResponseStat {
            score,
            correct,
            text_bytes: 4,
        }
    }

    #[test]
    fn summary_counts_pass_and_verification() {
        let mut cols = GroupColumns::new();
        cols.push_group(
            "a".into(),
            None,
            1,
            &[rs(1.0, -1), rs(0.0, -1), rs(f64::NAN, -1)],
        );
        cols.push_group("b".into(), None, 2, &[rs(0.5, 1), rs(0.5, 0)]);
        cols.push_group("c".into(), None, 3, &[rs(f64::NAN, 0)]);
        let mut s = Summary::default();
        s.add(&cols, 1e-4).unwrap();
        assert_eq!(
            (s.groups, s.responses, s.verified, s.scored, s.passed),
            (3, 6, 5, 4, 2)
        );
        assert_eq!(s.zero_std_groups, 1);
        assert_eq!(s.small_groups, 1);
        assert_eq!(s.group_sizes.get(&2), Some(&1));
        assert!((s.pass_rate() - 0.4).abs() < 1e-12);
        assert!((s.zero_std_fraction() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn per_group_handles_nan_and_singletons() {
        let p = per_group(&[1.0, f64::NAN, 0.0, 0.5], &[0, 3, 4]).unwrap();
        assert_eq!(p.mean[0], 0.5);
        assert_eq!((p.min[0], p.max[0], p.valid[0]), (0.0, 1.0, 2));
        assert!(p.std[1].is_nan());
    }

    #[test]
    fn moments_merge_incrementally() {
        let mut m = Moments::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            m.push(x);
        }
        assert!((m.mean_or_nan() - 2.5).abs() < 1e-12);
        assert!((m.variance() - 1.25).abs() < 1e-12);
    }
}
