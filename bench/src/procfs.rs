//! RSS and CPU time of a process from `/proc/<pid>/status` and
//! `/proc/<pid>/stat` (Linux only), sampled while a load runs.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcReading {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads `VmRSS` and utime + stime of `pid`.
pub fn read(pid: u32) -> anyhow::Result<ProcReading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("malformed /proc/<pid>/stat")
    };
    Ok(ProcReading {
        rss_kib,
        cpu_ticks: tick(11)? + tick(12)?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// What a group of processes used over a sampled interval.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Usage {
    /// Largest sampled sum of RSS, MiB.
    pub peak_rss_mib: f64,
    /// CPU time used (user + system) divided by wall time; 1.0 = one core.
    pub cpu_cores: f64,
    pub wall_secs: f64,
}

/// Samples the summed RSS and CPU time of some processes every 100 ms
/// until stopped.
pub struct Sampler {
    pids: Vec<u32>,
    start: Instant,
    start_ticks: u64,
    peak_kib: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

fn total(pids: &[u32]) -> anyhow::Result<ProcReading> {
    let mut sum = ProcReading::default();
    for &pid in pids {
        let r = read(pid)?;
        sum.rss_kib += r.rss_kib;
        sum.cpu_ticks += r.cpu_ticks;
    }
    Ok(sum)
}

impl Sampler {
    pub fn start(pids: Vec<u32>) -> anyhow::Result<Self> {
        let first = total(&pids)?;
        let peak_kib = Arc::new(Mutex::new(first.rss_kib));
        let task = {
            let pids = pids.clone();
            let peak = peak_kib.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    let Ok(now) = total(&pids) else { break };
                    let mut peak = peak.lock().unwrap_or_else(|e| e.into_inner());
                    *peak = (*peak).max(now.rss_kib);
                }
            })
        };
        Ok(Self {
            pids,
            start: Instant::now(),
            start_ticks: first.cpu_ticks,
            peak_kib,
            task,
        })
    }

    pub fn stop(self) -> anyhow::Result<Usage> {
        self.task.abort();
        let last = total(&self.pids)?;
        let wall = self.start.elapsed().as_secs_f64();
        let cpu = (last.cpu_ticks - self.start_ticks) as f64 / clock_ticks() as f64;
        let peak = (*self.peak_kib.lock().unwrap_or_else(|e| e.into_inner())).max(last.rss_kib);
        Ok(Usage {
            peak_rss_mib: peak as f64 / 1024.0,
            cpu_cores: cpu / wall,
            wall_secs: wall,
        })
    }
}
