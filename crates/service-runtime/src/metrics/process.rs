//! Process metrics read from `/proc/self` at scrape time: resident memory,
//! CPU seconds and open file descriptors, under the names Prometheus' own
//! client libraries use. Off Linux nothing is reported.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// Reads the process figures each time the registry is encoded.
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// One reading of `/proc/self`.
struct Reading {
    cpu_seconds: f64,
    resident_bytes: i64,
    open_fds: i64,
}

fn read() -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so field n is at index n - 3.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    let rss_pages: i64 = fields.get(24 - 3)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
    Some(Reading {
        cpu_seconds: (utime + stime) / ticks as f64,
        resident_bytes: rss_pages * page,
        open_fds,
    })
}

/// Writes one unlabelled figure under `name`, with its type taken from the
/// metric itself (a counter gets its `_total` suffix from the encoder).
fn describe(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(reading) = read() else {
            return Ok(());
        };
        describe(
            &mut encoder,
            "process_cpu_seconds",
            "User and system CPU time spent by this process, in seconds",
            ConstCounter::new(reading.cpu_seconds),
        )?;
        describe(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory of this process, in bytes",
            ConstGauge::new(reading.resident_bytes),
        )?;
        describe(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors of this process",
            ConstGauge::new(reading.open_fds),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let r = read().expect("/proc/self is readable on Linux");
        assert!(r.resident_bytes > 0);
        assert!(r.open_fds >= 3, "stdin, stdout and stderr at least");
        assert!(r.cpu_seconds >= 0.0);
    }
}
