//! Configuration of what operators wire around the sync: hooks, the HTTP
//! endpoint, and what triggers a sync besides the timer.

use std::path::PathBuf;
use std::time::Duration;

use super::{invalid, ConfigError, Sources};

/// An exec hook: a program run in the worktree.
#[derive(Debug, Clone)]
pub struct ExecHookConfig {
    pub command: String,
    pub timeout: Duration,
    pub backoff: Duration,
}

/// The webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub method: String,
    /// `None`: fire and forget.
    pub success_status: Option<u16>,
    pub timeout: Duration,
    pub backoff: Duration,
}

/// The HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub bind: String,
    pub metrics: bool,
    pub pprof: bool,
    /// Enables `POST /sync`.
    pub trigger_secret_file: Option<PathBuf>,
}

/// Everything of this module, validated.
#[derive(Debug, Clone, Default)]
pub struct Ops {
    pub exechook: Option<ExecHookConfig>,
    pub pre_publish_hook: Option<ExecHookConfig>,
    pub webhook: Option<WebhookConfig>,
    pub http: Option<HttpConfig>,
    pub sync_on_signal: Option<i32>,
    pub watch_local: bool,
}

/// `bind` if it is an address to listen on as Go writes one: `host:port`,
/// `[v6]:port` or `:port` (every interface).
fn check_bind(bind: &str) -> Result<String, String> {
    let problem = |why: &str| Err(format!("{bind:?}: {why}"));
    let Some((host, port)) = bind.rsplit_once(':') else {
        return problem("expected host:port or :port");
    };
    if port.parse::<u16>().is_err() {
        return problem("the port must be a number up to 65535");
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.contains(['[', ']', ':', '/', ' ']),
    };
    if !host_ok {
        return problem("the host must be a name, an IPv4 address or [an IPv6 address]");
    }
    Ok(bind.to_string())
}

fn at_least_1s(
    src: &Sources<'_>,
    name: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    let d = src.duration(name)?.unwrap_or(Duration::from_secs(default));
    if d < Duration::from_secs(1) {
        return Err(src.out_of_range(name, "must be at least 1s"));
    }
    Ok(d)
}

fn exec_hook(
    src: &Sources<'_>,
    prefix: &'static str,
    command: Option<String>,
) -> Result<Option<ExecHookConfig>, ConfigError> {
    let Some(command) = command else {
        return Ok(None);
    };
    let (timeout, backoff) = match prefix {
        "pre-publish-" => (
            at_least_1s(src, "pre-publish-exechook-timeout", 30)?,
            at_least_1s(src, "pre-publish-exechook-backoff", 3)?,
        ),
        _ => (
            at_least_1s(src, "exechook-timeout", 30)?,
            at_least_1s(src, "exechook-backoff", 3)?,
        ),
    };
    Ok(Some(ExecHookConfig {
        command,
        timeout,
        backoff,
    }))
}

/// The signals Linux names, as Go's `unix.SignalNum` knows them.
const SIGNAL_NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal by number (`1`, `0x1`, `01`) or name (`SIGHUP`, `HUP`, `usr1`) that
/// a process may catch and that does not already mean something here.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let s = s.trim();
    // A number as upstream reads one (Go's base 0: `1`, `0x1`, `01`).
    let number = super::values::parse_int(s)
        .ok()
        .and_then(|n| i32::try_from(n).ok());
    let n = match number {
        Some(n) => n,
        None => {
            let name = s.to_ascii_uppercase();
            let name = name.strip_prefix("SIG").unwrap_or(&name).to_string();
            SIGNAL_NAMES
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("{s:?} is not a signal name or number"))?
        }
    };
    // 32 up to the first real-time signal belong to the C library.
    let named = SIGNAL_NAMES.iter().any(|(_, v)| *v == n);
    if !named && !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        return Err(format!("{s:?} is not a valid signal number"));
    }
    // KILL and STOP cannot be caught; ILL, FPE and SEGV report a fault
    // of the process itself (signal-hook refuses them).
    let uncatchable = signal_hook::consts::FORBIDDEN.contains(&n);
    if uncatchable || [libc::SIGTERM, libc::SIGINT].contains(&n) {
        return Err(format!(
            "{s:?} cannot be used: it cannot be caught (KILL, STOP), reports a fault \
             (ILL, FPE, SEGV) or stops git-sync (TERM, INT)"
        ));
    }
    Ok(n)
}

pub(super) fn parse(src: &Sources<'_>) -> Result<Ops, ConfigError> {
    // v3's --sync-hook-command is the old name of --exechook-command.
    let command = match (
        src.text("exechook-command")?,
        src.text("sync-hook-command")?,
    ) {
        (Some(new), Some(old)) => {
            if new != old {
                src.old_name_won("sync-hook-command", &old, "exechook-command", &new);
            }
            Some(old)
        }
        (a, b) => a.or(b),
    };
    let exechook = exec_hook(src, "", command)?;
    let pre_publish_hook = exec_hook(
        src,
        "pre-publish-",
        src.text("pre-publish-exechook-command")?,
    )?;

    let webhook = match src.http_url("webhook-url")? {
        None => None,
        Some(url) => {
            let status = src.int("webhook-success-status")?.unwrap_or(200);
            let success_status = match status {
                -1 | 0 => None,
                s => Some(
                    u16::try_from(s)
                        .ok()
                        .filter(|s| (100..600).contains(s))
                        .ok_or_else(|| {
                            src.out_of_range(
                                "webhook-success-status",
                                "must be an HTTP status code, or 0 for fire and forget",
                            )
                        })?,
                ),
            };
            let method = src
                .text("webhook-method")?
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase();
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(src.out_of_range(
                    "webhook-method",
                    format!("{method:?} is not an HTTP method"),
                ));
            }
            Some(WebhookConfig {
                url,
                method,
                success_status,
                timeout: at_least_1s(src, "webhook-timeout", 1)?,
                backoff: at_least_1s(src, "webhook-backoff", 3)?,
            })
        }
    };

    let metrics = src.bool("http-metrics")?;
    let pprof = src.bool("http-pprof")?;
    let trigger_secret_file = src.text("sync-trigger-secret-file")?.map(PathBuf::from);
    let http = match src.get("http-bind", check_bind)? {
        Some(bind) => Some(HttpConfig {
            bind,
            metrics,
            pprof,
            trigger_secret_file,
        }),
        None => {
            for (set, name) in [
                (metrics, "http-metrics"),
                (pprof, "http-pprof"),
                (trigger_secret_file.is_some(), "sync-trigger-secret-file"),
            ] {
                if set {
                    return Err(invalid(name, "needs --http-bind"));
                }
            }
            None
        }
    };
    let sync_on_signal = src.get("sync-on-signal", parse_signal)?;
    Ok(Ops {
        exechook,
        pre_publish_hook,
        webhook,
        http,
        sync_on_signal,
        watch_local: src
            .get("watch-local", super::values::parse_bool)?
            .unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::{check_bind, parse_signal, SIGNAL_NAMES};

    #[test]
    fn binds_as_go_writes_them() {
        for ok in [
            ":8080",
            "127.0.0.1:0",
            "[::1]:80",
            "[::]:9",
            "localhost:8080",
        ] {
            assert_eq!(check_bind(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "8080",
            ":http",
            ":70000",
            "::1:80",
            "[nope]:80",
            "a b:80",
            "",
        ] {
            let e = check_bind(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGHUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("1"), Ok(1));
        assert_eq!(parse_signal("usr1"), Ok(libc::SIGUSR1));
        assert!(parse_signal("SIGKILL").is_err());
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
        assert_eq!(parse_signal("SIGPWR"), Ok(libc::SIGPWR));
        assert_eq!(parse_signal("0x1e"), Ok(libc::SIGPWR));
        assert_eq!(parse_signal("012"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("64"), Ok(libc::SIGRTMAX()));
        // Refused at start rather than failing (or aborting) later: the
        // C library's own real-time signals, and those that cannot be
        // caught or report a fault.
        for s in [
            "32", "33", "0", "-1", "4", "SIGILL", "8", "SEGV", "STOP", "9", "term",
        ] {
            let e = parse_signal(s).unwrap_err();
            assert!(e.starts_with(&format!("{s:?} ")), "{s}: {e}");
        }
        // A name by its number, a number by its name: the same verdict.
        for (name, n) in SIGNAL_NAMES {
            assert_eq!(
                parse_signal(name).ok(),
                parse_signal(&n.to_string()).ok(),
                "{name}"
            );
        }
    }
}
