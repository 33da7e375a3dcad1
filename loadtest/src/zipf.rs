//! Zipf popularity over a catalog of objects, for edge-shaped workloads (`--catalog`, `--zipf`).
//!
//! Object `i` (0-based; object 0 is the most popular) is drawn with probability
//! `(i + 1)^-α / H(N, α)`, where `H(N, α) = Σ_{k=1..N} k^-α`; `α = 0` is uniform.
//! [`Zipf::new`] precomputes the cumulative weights once (8 bytes per object,
//! shared read-only by every thread), and [`Zipf::sample`] inverts the
//! distribution with a binary search: O(log N) per request, exact up to
//! floating-point rounding.
//!
//! Draws are a pure function of `(seed, slot)` ([`unit`]): request slot `s` of
//! a run asks for the same object whichever connection or thread sends it, so
//! a run's sequence of objects is reproducible from `--seed`.

#![forbid(unsafe_code)]

/// Largest catalog accepted: its table takes 8 bytes per object (400 MB here).
pub const MAX_OBJECTS: u64 = 50_000_000;

/// A Zipf distribution over `0..n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Zipf {
    /// `cumulative[i] = Σ_{k=0..=i} (k + 1)^-α`.
    cumulative: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` objects (1 ..= [`MAX_OBJECTS`]) with exponent `alpha` (≥ 0).
    pub fn new(n: u64, alpha: f64) -> Result<Self, String> {
        if !(1..=MAX_OBJECTS).contains(&n) {
            return Err(format!("catalog size must be 1..={MAX_OBJECTS}"));
        }
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err("Zipf exponent must be a finite number >= 0".to_owned());
        }
        let mut cumulative = Vec::with_capacity(usize::try_from(n).map_err(|e| e.to_string())?);
        let mut total = 0.0;
        for rank in 1..=n {
            total += (rank as f64).powf(-alpha);
            cumulative.push(total);
        }
        Ok(Self { cumulative })
    }

    /// Objects in the catalog.
    pub fn len(&self) -> u64 {
        self.cumulative.len() as u64
    }

    /// Whether the catalog is empty (never: [`Zipf::new`] refuses 0).
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// Probability of object `i`.
    pub fn pmf(&self, i: u64) -> f64 {
        let Ok(i) = usize::try_from(i) else { return 0.0 };
        let Some(&upto) = self.cumulative.get(i) else { return 0.0 };
        let below = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (upto - below) / self.total()
    }

    fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(1.0)
    }

    /// The object whose cumulative interval holds `u` (in `[0, 1)`).
    pub fn sample(&self, u: f64) -> u64 {
        let target = u * self.total();
        let i = self.cumulative.partition_point(|&c| c <= target);
        // u < 1 keeps i below len; rounding at the very top is clamped to the last object.
        i.min(self.cumulative.len() - 1) as u64
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for request slot `slot` of a run seeded with `seed`.
pub fn unit(seed: u64, slot: u64) -> f64 {
    let x = mix(mix(seed.wrapping_add(0x9e37_79b9_7f4a_7c15)) ^ slot);
    // The top 53 bits, as exact multiples of 2^-53.
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmf_matches_the_formula() {
        // H(3, 1) = 1 + 1/2 + 1/3 = 11/6.
        let z = Zipf::new(3, 1.0).unwrap();
        let want = [6.0 / 11.0, 3.0 / 11.0, 2.0 / 11.0];
        for (i, w) in want.iter().enumerate() {
            assert!((z.pmf(i as u64) - w).abs() < 1e-12, "{i}");
        }
        assert_eq!(z.pmf(3), 0.0);
        let uniform = Zipf::new(4, 0.0).unwrap();
        assert!((0..4).all(|i| (uniform.pmf(i) - 0.25).abs() < 1e-12));
    }

    #[test]
    fn refuses_bad_parameters() {
        for (n, alpha) in [(0, 1.0), (MAX_OBJECTS + 1, 1.0), (10, -0.5), (10, f64::NAN)] {
            assert!(Zipf::new(n, alpha).is_err(), "{n} {alpha}");
        }
    }

    #[test]
    fn sample_inverts_the_cumulative_distribution() {
        let z = Zipf::new(3, 1.0).unwrap();
        // Boundaries at 6/11 and 9/11.
        let cases = [(0.0, 0), (0.545, 0), (0.546, 1), (0.818, 1), (0.819, 2), (0.999_999, 2)];
        for (u, want) in cases {
            assert_eq!(z.sample(u), want, "{u}");
        }
        assert_eq!(Zipf::new(1, 2.0).unwrap().sample(0.7), 0);
    }

    #[test]
    fn units_are_in_range_and_reproducible() {
        for slot in 0..10_000 {
            let u = unit(42, slot);
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, unit(42, slot));
        }
        assert_ne!(unit(1, 0), unit(2, 0));
    }

    #[test]
    fn seeded_samples_follow_the_pmf() {
        // A fixed seed makes this deterministic. Each object's frequency must lie within
        // 5 standard deviations of its probability (binomial), and the whole sample must
        // pass a chi-square test at far beyond the 99.9% quantile for N-1 degrees of freedom.
        const DRAWS: u64 = 400_000;
        for (n, alpha, seed) in [(50usize, 0.0, 1), (50, 0.8, 2), (200, 1.0, 3), (1000, 1.2, 4)] {
            let z = Zipf::new(n as u64, alpha).unwrap();
            let mut counts = vec![0u64; n];
            for slot in 0..DRAWS {
                counts[usize::try_from(z.sample(unit(seed, slot))).unwrap()] += 1;
            }
            let draws = DRAWS as f64;
            let mut chi2 = 0.0;
            for (i, &count) in counts.iter().enumerate() {
                let p = z.pmf(i as u64);
                let expected = p * draws;
                let sd = (draws * p * (1.0 - p)).sqrt();
                assert!(
                    (count as f64 - expected).abs() <= 5.0 * sd + 1.0,
                    "n={n} α={alpha} object {i}: {count} vs {expected:.1}"
                );
                chi2 += (count as f64 - expected).powi(2) / expected;
            }
            // Wilson–Hilferty: the 99.9% quantile of chi-square(k) is about
            // k (1 - 2/(9k) + 3.09 sqrt(2/(9k)))^3.
            let k = (n - 1) as f64;
            let q999 = k * (1.0 - 2.0 / (9.0 * k) + 3.09 * (2.0 / (9.0 * k)).sqrt()).powi(3);
            assert!(chi2 < q999, "n={n} α={alpha}: chi2 {chi2:.1} >= {q999:.1}");
            // The most popular object is object 0 unless the distribution is uniform.
            if alpha > 0.0 {
                assert!(counts[0] > counts[n - 1]);
            }
        }
    }
}
