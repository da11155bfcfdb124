//! The deprecated v3 names, folded into their v4 meaning as upstream v4
//! folds them (see upstream's `v3-to-v4.md`), plus one case upstream rejects
//! and we accept: `--rev=FETCH_HEAD` with a branch means that branch's tip,
//! as the original 2015 manifest says.

use std::time::Duration;

use super::{invalid, values, ConfigError, Sources};

/// `--ref`, or the target given by the v3 `--branch` / `--rev`:
///
/// | --branch | --rev                  | target                  |
/// |----------|------------------------|-------------------------|
/// | ""       | ""                     | --ref (default HEAD)    |
/// | name     | "", HEAD or FETCH_HEAD | branch `name`           |
/// | ""       | rev                    | `rev` (FETCH_HEAD: HEAD) |
/// | name     | other rev              | error                   |
///
/// Setting `--ref` as well as either of them is a contradiction.
///
/// Each of the three must be something a remote can have (see
/// `values::check_ref`).
pub(super) fn target_ref(src: &Sources<'_>) -> Result<String, ConfigError> {
    for name in ["ref", "branch", "rev"] {
        src.get(name, values::check_ref)?;
    }
    let branch = src.text("branch")?;
    let rev = src.text("rev")?;
    let from_legacy = match (branch, rev.as_deref()) {
        (None, None) => None,
        (Some(b), None | Some("HEAD") | Some("FETCH_HEAD")) => Some(b),
        (None, Some("FETCH_HEAD")) => Some("HEAD".to_string()),
        (None, Some(r)) => Some(r.to_string()),
        (Some(_), Some(r)) => {
            return Err(invalid(
                "rev",
                format!(
                    "cannot set --ref from both deprecated --branch and --rev {r:?}; use --ref"
                ),
            ))
        }
    };
    match from_legacy {
        Some(_) if src.given("ref") => Err(invalid(
            "ref",
            "cannot be combined with the deprecated --branch or --rev",
        )),
        Some(r) => {
            tracing::debug!(git_ref = %r, "setting --ref from deprecated --branch/--rev");
            Ok(r)
        }
        None => match src.text("ref")? {
            Some(r) => Ok(r),
            // Given, but empty (as upstream, an error rather than HEAD).
            None if src.given("ref") => Err(invalid(
                "ref",
                "must not be empty (HEAD is the remote's default branch)",
            )),
            None => Ok("HEAD".into()),
        },
    }
}

/// `--period`, or the v3 `--wait` in (fractional) seconds.
pub(super) fn period(src: &Sources<'_>) -> Result<Duration, ConfigError> {
    let wait = src.get("wait", values::parse_seconds)?;
    match wait.filter(|w| !w.is_zero()) {
        Some(_) if src.given("period") => Err(invalid(
            "period",
            "cannot be combined with the deprecated --wait",
        )),
        Some(w) => Ok(w),
        None => Ok(src.duration("period")?.unwrap_or(Duration::from_secs(10))),
    }
}

/// `--sync-timeout`, or the v3 `--timeout` in seconds.
pub(super) fn sync_timeout(src: &Sources<'_>) -> Result<Duration, ConfigError> {
    match src.int("timeout")?.filter(|t| *t != 0) {
        Some(t) if t < 0 => Err(invalid("timeout", "must be a positive number of seconds")),
        Some(t) => Ok(Duration::from_secs(t.unsigned_abs())),
        None => Ok(src
            .duration("sync-timeout")?
            .unwrap_or(Duration::from_secs(120))),
    }
}

/// `--max-failures`, or the v3 `--max-sync-failures`.
pub(super) fn max_failures(src: &Sources<'_>) -> Result<i64, ConfigError> {
    match src.int("max-sync-failures")?.filter(|m| *m != 0) {
        Some(m) => Ok(m),
        None => Ok(src.int("max-failures")?.unwrap_or(0)),
    }
}

/// `-v`, or the v3 `--v` when it is 0 or more.
pub(super) fn verbosity(src: &Sources<'_>) -> Result<i64, ConfigError> {
    match src.int("v")?.filter(|v| *v >= 0) {
        Some(v) => Ok(v),
        None => Ok(src.int("verbose")?.unwrap_or(0)),
    }
}

/// v3's `--change-permissions` is refused unless 0, as upstream v4 does.
pub(super) fn check_removed(src: &Sources<'_>) -> Result<(), ConfigError> {
    if src.int("change-permissions")?.unwrap_or(0) != 0 {
        return Err(invalid(
            "change-permissions",
            "is no longer supported; use --group-write",
        ));
    }
    Ok(())
}
