//! Prometheus metrics, with upstream git-sync's names and labels so that
//! dashboards keep working, plus the usual process metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Outcome labels of `git_sync_count_total` / `git_sync_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    Success,
    Error,
    Noop,
}

impl SyncStatus {
    const ALL: [SyncStatus; 3] = [SyncStatus::Success, SyncStatus::Error, SyncStatus::Noop];
    fn label(self) -> &'static str {
        match self {
            SyncStatus::Success => "success",
            SyncStatus::Error => "error",
            SyncStatus::Noop => "noop",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// A counter partitioned by `status` (success, error).
#[derive(Debug, Default)]
struct Outcomes {
    success: AtomicU64,
    error: AtomicU64,
}

impl Outcomes {
    fn record(&self, ok: bool) {
        let c = if ok { &self.success } else { &self.error };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (label, c) in [("success", &self.success), ("error", &self.error)] {
            let n = c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{status=\"{label}\"}} {n}");
        }
    }
}

/// One gauge with its HELP and TYPE lines; nothing when it has no value.
fn gauge(out: &mut String, name: &str, labels: &str, help: &str, value: Option<f64>) {
    if let Some(v) = value {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// All counters; shared by the loop, the hooks and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    sync_count: [AtomicU64; 3],
    /// Sum of durations in microseconds, per status.
    sync_micros: [AtomicU64; 3],
    fetch_count: AtomicU64,
    askpass: Outcomes,
    github_token: Outcomes,
    /// `POST /sync` requests, accepted or refused.
    triggers: Outcomes,
    started: Mutex<Option<SystemTime>>,
    freshness: Mutex<Freshness>,
}

/// How current the published tree is (not in upstream): what alerting on a
/// stale site needs, which counters cannot tell.
#[derive(Debug, Default)]
struct Freshness {
    /// End of the last pass that succeeded, whether it changed anything.
    last_success: Option<SystemTime>,
    /// The same on the monotonic clock, for ages.
    last_success_at: Option<Instant>,
    /// End of the last pass that published a new commit.
    last_update: Option<SystemTime>,
    /// Passes failed since the last success.
    failures_in_a_row: u64,
    /// The commit published.
    hash: Option<String>,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics::default();
        if let Ok(mut s) = m.started.lock() {
            *s = Some(SystemTime::now());
        }
        m
    }

    /// One sync attempt finished.
    pub fn sync(&self, status: SyncStatus, took: Duration) {
        self.sync_count[status.index()].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sync_micros[status.index()].fetch_add(micros, Ordering::Relaxed);
        if let Ok(mut f) = self.freshness.lock() {
            let now = SystemTime::now();
            match status {
                SyncStatus::Error => f.failures_in_a_row += 1,
                SyncStatus::Success | SyncStatus::Noop => {
                    f.failures_in_a_row = 0;
                    f.last_success = Some(now);
                    f.last_success_at = Some(Instant::now());
                    if status == SyncStatus::Success {
                        f.last_update = Some(now);
                    }
                }
            }
        }
    }

    /// How long ago the last pass succeeded (none yet: `None`).
    pub fn since_last_success(&self) -> Option<Duration> {
        let f = self.freshness.lock().ok()?;
        f.last_success_at.map(|t| t.elapsed())
    }

    /// The commit the link points at now.
    pub fn published(&self, hash: &str) {
        if let Ok(mut f) = self.freshness.lock() {
            if f.hash.as_deref() != Some(hash) {
                f.hash = Some(hash.to_string());
            }
        }
    }

    /// A fetch from the remote happened.
    pub fn fetch(&self) {
        self.fetch_count.fetch_add(1, Ordering::Relaxed);
    }

    /// An askpass URL was queried.
    pub fn askpass(&self, ok: bool) {
        self.askpass.record(ok);
    }

    /// A GitHub App installation token was requested.
    pub fn github_token(&self, ok: bool) {
        self.github_token.record(ok);
    }

    /// A `POST /sync` was accepted (`ok`) or refused.
    pub fn trigger(&self, ok: bool) {
        self.triggers.record(ok);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP git_sync_count_total How many git syncs completed, partitioned by state (success, error, noop)");
        let _ = writeln!(out, "# TYPE git_sync_count_total counter");
        for s in SyncStatus::ALL {
            let _ = writeln!(
                out,
                "git_sync_count_total{{status=\"{}\"}} {}",
                s.label(),
                self.sync_count[s.index()].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP git_sync_duration_seconds Summary of git_sync durations"
        );
        let _ = writeln!(out, "# TYPE git_sync_duration_seconds summary");
        for s in SyncStatus::ALL {
            let sum = self.sync_micros[s.index()].load(Ordering::Relaxed) as f64 / 1e6;
            let n = self.sync_count[s.index()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "git_sync_duration_seconds_sum{{status=\"{}\"}} {sum}",
                s.label()
            );
            let _ = writeln!(
                out,
                "git_sync_duration_seconds_count{{status=\"{}\"}} {n}",
                s.label()
            );
        }
        let _ = writeln!(
            out,
            "# HELP git_fetch_count_total How many git fetches were run"
        );
        let _ = writeln!(out, "# TYPE git_fetch_count_total counter");
        let _ = writeln!(
            out,
            "git_fetch_count_total {}",
            self.fetch_count.load(Ordering::Relaxed)
        );
        self.askpass.render(
            &mut out,
            "git_sync_askpass_calls",
            "How many git askpass calls completed, partitioned by state (success, error)",
        );
        self.github_token.render(
            &mut out,
            "git_sync_refresh_github_app_token_count",
            "How many times the GitHub app token was refreshed, partitioned by state (success, error)",
        );
        self.triggers.render(
            &mut out,
            "git_sync_trigger_requests_total",
            "How many POST /sync requests came, partitioned by state (success: a sync started, error: refused)",
        );
        self.render_freshness(&mut out);
        self.render_process(&mut out);
        out
    }

    fn render_freshness(&self, out: &mut String) {
        let Ok(f) = self.freshness.lock() else {
            return;
        };
        let since_epoch = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        };
        gauge(
            out,
            "git_sync_last_success_timestamp_seconds",
            "",
            "When a sync last succeeded (a new commit or none), since unix epoch in seconds.",
            since_epoch(f.last_success),
        );
        gauge(
            out,
            "git_sync_last_update_timestamp_seconds",
            "",
            "When a new commit was last published, since unix epoch in seconds.",
            since_epoch(f.last_update),
        );
        gauge(
            out,
            "git_sync_consecutive_failures",
            "",
            "How many syncs failed since the last success.",
            Some(f.failures_in_a_row as f64),
        );
        if let Some(hash) = &f.hash {
            gauge(
                out,
                "git_sync_published_info",
                &format!("{{hash=\"{hash}\"}}"),
                "The commit published, as the hash label.",
                Some(1.0),
            );
        }
    }

    fn render_process(&self, out: &mut String) {
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which may contain spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let num = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            // utime and stime are fields 14 and 15 of stat: 11 and 12 here.
            let cpu = (num(11) + num(12)) / ticks.max(1) as f64;
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
            );
            let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
            let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
            gauge(
                out,
                "process_virtual_memory_bytes",
                "",
                "Virtual memory size in bytes.",
                Some(num(20)),
            );
            gauge(
                out,
                "process_resident_memory_bytes",
                "",
                "Resident memory size in bytes.",
                Some(num(21) * page as f64),
            );
        }
        let fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64);
        gauge(
            out,
            "process_open_fds",
            "",
            "Number of open file descriptors.",
            fds,
        );
        // As Go's process collector: dashboards plot open over max.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only into the struct it is given.
        let max_fds = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0)
            .then_some(limit.rlim_cur as f64);
        gauge(
            out,
            "process_max_fds",
            "",
            "Maximum number of open file descriptors.",
            max_fds,
        );
        let started = self.started.lock().ok().and_then(|s| *s);
        gauge(
            out,
            "process_start_time_seconds",
            "",
            "Start time of the process since unix epoch in seconds.",
            started
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let m = Metrics::new();
        m.sync(SyncStatus::Success, Duration::from_millis(1500));
        m.sync(SyncStatus::Noop, Duration::from_millis(1));
        m.fetch();
        m.github_token(false);
        let text = m.render();
        assert!(
            text.contains("git_sync_count_total{status=\"success\"} 1"),
            "{text}"
        );
        assert!(text.contains("git_sync_count_total{status=\"error\"} 0"));
        assert!(text.contains("git_sync_duration_seconds_sum{status=\"success\"} 1.5"));
        assert!(text.contains("git_fetch_count_total 1"));
        assert!(text.contains("git_sync_askpass_calls{status=\"success\"} 0"));
        assert!(text.contains("git_sync_refresh_github_app_token_count{status=\"error\"} 1"));
        assert!(text.contains("process_resident_memory_bytes"));
        let max_fds = text
            .lines()
            .find_map(|l| l.strip_prefix("process_max_fds "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(max_fds.is_some_and(|m| m >= 3.0), "{text}");
    }

    #[test]
    fn freshness_follows_the_passes() {
        let m = Metrics::new();
        let has =
            |t: &str, what: &str| m.render().lines().any(|l| l.starts_with(what)) == (t == "yes");
        assert!(has("no", "git_sync_last_success_timestamp_seconds"));
        assert!(has("no", "git_sync_published_info"));
        m.sync(SyncStatus::Error, Duration::ZERO);
        m.sync(SyncStatus::Error, Duration::ZERO);
        assert!(has("yes", "git_sync_consecutive_failures 2"));
        m.sync(SyncStatus::Noop, Duration::ZERO);
        m.published("abc");
        assert!(has("yes", "git_sync_consecutive_failures 0"));
        assert!(has("yes", "git_sync_last_success_timestamp_seconds 1"));
        assert!(has("no", "git_sync_last_update_timestamp_seconds"));
        assert!(has("yes", "git_sync_published_info{hash=\"abc\"} 1"));
        m.sync(SyncStatus::Success, Duration::ZERO);
        m.published("def");
        assert!(has("yes", "git_sync_last_update_timestamp_seconds 1"));
        assert!(has("yes", "git_sync_published_info{hash=\"def\"} 1"));
        assert!(has("no", "git_sync_published_info{hash=\"abc\"}"));
    }
}
