//! The history of supercomputers, in numbers: growth rates fitted to a series of records.
//!
//! ```
//! // A quantity that doubles every two years:
//! let points: Vec<(f64, f64)> = (0..10).map(|i| (2000.0 + i as f64, 2f64.powf(i as f64 / 2.0))).collect();
//! assert!((parcours_limits::history::doubling_time(&points) - 2.0).abs() < 1e-9);
//! ```

/// The time for `value` to double, fitted by least squares to `log2(value)` over time:
/// `(time, value)` points, values above zero. In the unit of `time` (years, for the TOP500).
///
/// # Panics
/// With fewer than two points, a value not above zero, or no growth at all.
pub fn doubling_time(points: &[(f64, f64)]) -> f64 {
    assert!(points.len() >= 2, "a growth rate needs two points at least");
    assert!(
        points.iter().all(|&(_, v)| v > 0.0),
        "values must be above zero to take their logarithm"
    );
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_l = points.iter().map(|p| p.1.log2()).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for &(t, v) in points {
        cov += (t - mean_t) * (v.log2() - mean_l);
        var += (t - mean_t) * (t - mean_t);
    }
    let doublings_per_unit = cov / var;
    assert!(doublings_per_unit > 0.0, "the values do not grow");
    1.0 / doublings_per_unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "do not grow")]
    fn flat_series_have_no_doubling_time() {
        doubling_time(&[(0.0, 1.0), (1.0, 1.0)]);
    }
}
