//! How results are shown: readable text for a terminal, or one JSON
//! document (one per line for streams) for scripts.

use clap::ValueEnum;
use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A command's result, printable either way.
pub trait Report: Serialize {
    /// The text form, for a person at a terminal.
    fn text(&self) -> String;
}

/// Prints `report` on standard output in `format`.
pub fn print<R: Report>(report: &R, format: Format) {
    match format {
        Format::Text => println!("{}", report.text().trim_end()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).expect("reports always serialise")
        ),
    }
}

/// Progress of a long operation, on standard error so it never mixes with
/// the result a script reads from standard output; at most once a second.
pub struct Progress {
    what: String,
    last: std::time::Instant,
}

impl Progress {
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            last: std::time::Instant::now(),
        }
    }

    /// Reports `done` of `total` if a second passed since the last report.
    pub fn tick(&mut self, done: u64, total: u64) {
        if self.last.elapsed() >= std::time::Duration::from_secs(1) {
            self.last = std::time::Instant::now();
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprintln!("{}: {done} of about {total} events ({percent}%)", self.what);
        }
    }
}

/// `seconds` as a short human duration (`42 s`, `3 min 5 s`, `2 h 1 min`).
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{:.1} s", seconds.max(0.0)),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::duration(1.24), "1.2 s");
        assert_eq!(super::duration(185.0), "3 min 5 s");
        assert_eq!(super::duration(7260.0), "2 h 1 min");
        assert_eq!(super::duration(-3.0), "0.0 s");
    }
}
