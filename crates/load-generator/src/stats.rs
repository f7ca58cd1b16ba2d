//! Latency samples and their percentiles (exact: every sample is kept).

use std::{collections::BTreeMap, time::Duration};

/// Latencies of one kind of operation.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.values.push(d);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn extend(&mut self, other: Samples) {
        self.values.extend(other.values);
    }

    /// The `p`-th percentile (0–100), nearest-rank.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.values.is_empty() {
            return None;
        }
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        Some(sorted[rank.min(sorted.len()) - 1])
    }

    /// `p50 / p90 / p99 / max` in milliseconds.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no samples".into();
        }
        let ms = |p| {
            self.percentile(p)
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        format!(
            "p50 {} / p90 {} / p99 {} / max {} ms (n={})",
            ms(50.0),
            ms(90.0),
            ms(99.0),
            ms(100.0),
            self.len()
        )
    }
}

/// Counts of responses by HTTP status (0 = no response).
#[derive(Debug, Default, Clone)]
pub struct StatusCounts(pub BTreeMap<u16, usize>);

impl StatusCounts {
    pub fn add(&mut self, status: u16) {
        *self.0.entry(status).or_default() += 1;
    }

    pub fn merge(&mut self, other: StatusCounts) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }
}

impl std::fmt::Display for StatusCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<_> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(Samples::default().percentile(50.0), None);
    }
}
