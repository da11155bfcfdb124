//! Requests to an LFS server made again when they failed in a way that
//! may pass, as git-lfs retries its transfers: a connection refused, cut
//! or timed out, a short download, a server busy (429, honouring its
//! `Retry-After` in seconds) or failing for a moment (500, 502, 503, 504).
//! `lfs.transfer.maxretries` (8) says how many times, with delays doubling
//! up to `lfs.transfer.maxretrydelay` (10 s; 0: none, unless asked).

use std::time::{Duration, Instant};

use super::super::Cancel;
use super::Failure;

/// The delay before the first retry.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// The longest `Retry-After` waited for; a server asking for more fails
/// the pass, whose next one asks again.
const LONGEST_ASKED: Duration = Duration::from_secs(60);

/// How a failed request is made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retries {
    /// How many times, at most.
    pub max: u32,
    /// The longest delay before one (but a server's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max: 8,
            max_delay: Duration::from_secs(10),
        }
    }
}

impl Retries {
    /// From the git config, as git-lfs reads it: a count below 1 or a
    /// negative delay (or not a number) is its default, said in the log.
    pub fn from_config(config: Option<&git2::Config>) -> Self {
        let mut r = Retries::default();
        let Some(config) = config else { return r };
        let read = |key: &str| match config.get_string(key) {
            Ok(text) => Some((text.trim().parse::<i64>().ok(), text)),
            Err(_) => None,
        };
        match read("lfs.transfer.maxretries") {
            Some((Some(n), _)) if n >= 1 => r.max = u32::try_from(n).unwrap_or(u32::MAX),
            Some((_, text)) => {
                tracing::warn!(key = "lfs.transfer.maxretries", value = %text, "not a count of at least 1: 8, as git-lfs")
            }
            None => {}
        }
        match read("lfs.transfer.maxretrydelay") {
            Some((Some(s), _)) if s >= 0 => r.max_delay = Duration::from_secs(s.unsigned_abs()),
            Some((_, text)) => {
                tracing::warn!(key = "lfs.transfer.maxretrydelay", value = %text, "not a count of seconds: 10, as git-lfs")
            }
            None => {}
        }
        r
    }

    /// `attempt` until it succeeds, fails in a way that does not pass, or
    /// was made again [`Retries::max`] times; `what` names it in the log.
    pub fn run<T>(
        &self,
        what: &str,
        cancel: &Cancel,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut delay = FIRST_DELAY.min(self.max_delay);
        let mut made = 0;
        loop {
            let (why, asked) = match attempt() {
                Err(Failure::Passing { why, after }) => (why, after),
                done => return done,
            };
            if made == self.max {
                let again = match made {
                    1 => "made again once".to_string(),
                    n => format!("made again {n} times"),
                };
                return Err(Failure::Failed(format!("{why} ({again})")));
            }
            let wait = match asked {
                Some(a) if a > LONGEST_ASKED => {
                    return Err(Failure::Failed(format!(
                        "{why} (the server asks to come back in {} s)",
                        a.as_secs()
                    )))
                }
                Some(a) => a,
                None => delay,
            };
            made += 1;
            tracing::debug!(request = what, error = %why, retry = made, wait = ?wait, "git-lfs request failed: making it again");
            pause(wait, cancel)?;
            delay = delay.saturating_mul(2).min(self.max_delay);
        }
    }
}

/// Wait `wait`, unless cancelled meanwhile.
fn pause(wait: Duration, cancel: &Cancel) -> Result<(), Failure> {
    let end = Instant::now() + wait;
    loop {
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The failure of a request that got no answer, said as `why`: it may
/// pass when the connection could not be made, or broke, or timed out;
/// not when it was refused for good (a SOCKS proxy that takes neither no
/// login nor the URL's password, or cannot be asked what was asked).
pub(crate) fn unanswered(why: String, e: &ureq::Error) -> Failure {
    use std::io::ErrorKind::{InvalidInput, PermissionDenied, Unsupported};
    match e {
        ureq::Error::Io(io)
            if matches!(io.kind(), PermissionDenied | InvalidInput | Unsupported) =>
        {
            Failure::Failed(why)
        }
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound => Failure::Passing { why, after: None },
        _ => Failure::Failed(why),
    }
}

/// The failure of an answer of HTTP `status` with `headers`, said as
/// `why`: it may pass when the server is busy or failing for a moment.
pub(crate) fn refused(why: String, status: u16, headers: &ureq::http::HeaderMap) -> Failure {
    match status_may_pass(status) {
        true => Failure::Passing {
            why,
            after: retry_after(headers),
        },
        false => Failure::Failed(why),
    }
}

/// Whether an answer's HTTP status may pass.
pub(crate) fn status_may_pass(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// What an answer's `Retry-After` header asks for, when it is a number
/// of seconds (an HTTP date is left to the usual delay).
fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    let value = headers.get("Retry-After")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing(why: &str) -> Failure {
        Failure::Passing {
            why: why.into(),
            after: None,
        }
    }

    #[test]
    fn what_may_pass_is_made_again_up_to_the_count() {
        let quick = Retries {
            max: 2,
            max_delay: Duration::ZERO,
        };
        let cancel = Cancel::new();
        let mut calls = 0;
        let got = quick.run("x", &cancel, || {
            calls += 1;
            match calls {
                1 | 2 => Err(passing("503")),
                _ => Ok(calls),
            }
        });
        assert_eq!(got.unwrap(), 3);
        calls = 0;
        let got: Result<(), _> = quick.run("x", &cancel, || {
            calls += 1;
            Err(passing("503"))
        });
        assert_eq!(calls, 3);
        assert_eq!(got.unwrap_err().to_string(), "503 (made again 2 times)");
        // What does not pass is not made again.
        calls = 0;
        let got: Result<(), _> = quick.run("x", &cancel, || {
            calls += 1;
            Err(Failure::Failed("404".into()))
        });
        assert_eq!((calls, got.unwrap_err().to_string()), (1, "404".into()));
    }

    #[test]
    fn a_wait_ends_when_cancelled_and_a_long_retry_after_is_not_waited_for() {
        let slow = Retries {
            max: 1,
            max_delay: Duration::from_secs(600),
        };
        let cancel = Cancel::until(Instant::now() + Duration::from_millis(100));
        let started = Instant::now();
        let got: Result<(), _> = slow.run("x", &cancel, || {
            Err(Failure::Passing {
                why: "429".into(),
                after: Some(Duration::from_secs(30)),
            })
        });
        assert!(matches!(got, Err(Failure::Cancelled)), "{got:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let got: Result<(), _> = slow.run("x", &Cancel::new(), || {
            Err(Failure::Passing {
                why: "429".into(),
                after: Some(Duration::from_secs(3600)),
            })
        });
        let e = got.unwrap_err().to_string();
        assert!(e.contains("come back in 3600 s"), "{e}");
    }

    #[test]
    fn settings_as_git_lfs_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Retries::from_config(Some(&git2::Config::open(&path).unwrap()))
        };
        assert_eq!(read(""), Retries::default());
        let set = read("[lfs \"transfer\"]\n maxretries = 3\n maxretrydelay = 0\n");
        assert_eq!((set.max, set.max_delay), (3, Duration::ZERO));
        for bad in ["maxretries = 0", "maxretries = x", "maxretrydelay = -1"] {
            let r = read(&format!("[lfs \"transfer\"]\n {bad}\n"));
            assert_eq!(r, Retries::default(), "{bad}");
        }
        let asked = |value: &str| {
            let mut headers = ureq::http::HeaderMap::new();
            headers.insert("retry-after", value.parse().unwrap());
            retry_after(&headers)
        };
        assert_eq!(asked(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(asked("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after(&ureq::http::HeaderMap::new()), None);
        assert!(status_may_pass(503) && !status_may_pass(501) && !status_may_pass(404));
        let io = |kind| ureq::Error::Io(std::io::Error::new(kind, "x"));
        let passes = |e: &ureq::Error| matches!(unanswered("x".into(), e), Failure::Passing { .. });
        assert!(passes(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(passes(&ureq::Error::ConnectionFailed));
        assert!(!passes(&io(std::io::ErrorKind::PermissionDenied)));
    }
}
