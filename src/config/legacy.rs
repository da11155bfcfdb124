//! The deprecated v3 names, folded into their v4 meaning as upstream v4
//! folds them (see upstream's `v3-to-v4.md`), plus one case upstream rejects
//! and we accept: `--rev=FETCH_HEAD` with a branch means that branch's tip,
//! as the original 2015 manifest says. A v3 name given together with its v4
//! name wins, as upstream; other values are warned about (see
//! [`Sources::old_name_won`]).

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
/// `--ref` given as well is not used, as upstream.
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
        Some(r) => {
            // Only a --ref the user gave loses: its default is no choice.
            let given = src.text("ref")?.filter(|_| src.given("ref"));
            if let Some(ignored) = given.filter(|i| *i != r) {
                let old = if src.given("branch") { "branch" } else { "rev" };
                src.old_name_won(old, &r, "ref", &ignored);
            }
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

/// `--period`, or the v3 `--wait` in (fractional) seconds; with the name
/// of the one used.
pub(super) fn period(src: &Sources<'_>) -> Result<(Duration, &'static str), ConfigError> {
    let wait = src.get("wait", values::parse_seconds)?;
    let period = src.duration("period")?;
    match wait.filter(|w| !w.is_zero()) {
        Some(w) => {
            old_text_won(src, "wait", "period", period.is_some_and(|p| p != w))?;
            Ok((w, "wait"))
        }
        None => Ok((period.unwrap_or(Duration::from_secs(10)), "period")),
    }
}

/// [`Sources::old_name_won`] with both values as given, when `new` was
/// given (not its default) and its value `differs` from `old`'s.
fn old_text_won(
    src: &Sources<'_>,
    old: &'static str,
    new: &'static str,
    differs: bool,
) -> Result<(), ConfigError> {
    if !differs || !src.given(new) {
        return Ok(());
    }
    let text = |name| {
        src.get(name, |s| Ok(s.to_string()))
            .map(Option::unwrap_or_default)
    };
    src.old_name_won(old, &text(old)?, new, &text(new)?);
    Ok(())
}

/// `--sync-timeout`, or the v3 `--timeout` in seconds; with the name of
/// the one used.
pub(super) fn sync_timeout(src: &Sources<'_>) -> Result<(Duration, &'static str), ConfigError> {
    let sync_timeout = src.duration("sync-timeout")?;
    match src.int("timeout")?.filter(|t| *t != 0) {
        Some(t) if t < 0 => {
            Err(src.out_of_range("timeout", "must be a positive number of seconds"))
        }
        Some(t) => {
            let t = Duration::from_secs(t.unsigned_abs());
            let differs = sync_timeout.is_some_and(|s| s != t);
            old_text_won(src, "timeout", "sync-timeout", differs)?;
            Ok((t, "timeout"))
        }
        None => Ok((
            sync_timeout.unwrap_or(Duration::from_secs(120)),
            "sync-timeout",
        )),
    }
}

/// `--max-failures`, or the v3 `--max-sync-failures`.
pub(super) fn max_failures(src: &Sources<'_>) -> Result<i64, ConfigError> {
    let max_failures = src.int("max-failures")?;
    match src.int("max-sync-failures")?.filter(|m| *m != 0) {
        Some(m) => {
            let differs = max_failures.is_some_and(|n| n != m);
            old_text_won(src, "max-sync-failures", "max-failures", differs)?;
            Ok(m)
        }
        None => Ok(max_failures.unwrap_or(0)),
    }
}

/// `-v`, or the v3 `--v` when it is 0 or more.
pub(super) fn verbosity(src: &Sources<'_>) -> Result<i64, ConfigError> {
    let verbose = src.int("verbose")?;
    match src.int("v")?.filter(|v| *v >= 0) {
        Some(v) => {
            old_text_won(src, "v", "verbose", verbose.is_some_and(|n| n != v))?;
            Ok(v)
        }
        None => Ok(verbose.unwrap_or(0)),
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
