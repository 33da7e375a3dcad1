//! HdrHistogram percentile-distribution text (`.hgrm`), values in milliseconds.
//!
//! The layout follows HdrHistogram's `outputPercentileDistribution` with an
//! output scaling ratio of 1000 (µs recorded, ms printed), so the files load
//! in HdrHistogram's online plotter beside wrk2's output.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Renders `h` (µs) as `.hgrm` text.
pub fn render(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value_ms = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ =
                    writeln!(out, "{value_ms:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{value_ms:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / 1000.0, h.stdev() / 1000.0, h.max() as f64 / 1000.0)
    };
    let _ = writeln!(out, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]");
    let _ = writeln!(out, "#[Max     = {max:12.3}, Total count    = {:12}]", h.len());
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        // HdrHistogram's sub-bucket count: 2^ceil(log2(2 * 10^significant_digits)).
        (2u64 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn ends_at_100_percent_with_the_total_count() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let text = render(&h);
        let last = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        let cols: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(cols.len(), 3, "{last}");
        assert_eq!(cols[1], "1.000000000000");
        assert_eq!(cols[2], "1000");
        assert!(text.contains("Total count    =         1000"));
    }
}
