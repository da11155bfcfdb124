//! Environment variables under git-sync's prefixes (`GITSYNC_`,
//! `GIT_SYNC_`) that no flag reads: most often a typo (`GITSYNC_REFF`),
//! which would otherwise pass in silence, the setting left at its
//! default. Said at start, with the name most likely meant; not an error,
//! as upstream ignores them and a newer release's names may be among
//! them.

use super::flags::{self, FLAGS};
use super::spelling;

/// Prefixes of the variables a flag may be set by.
const PREFIXES: [&str; 2] = ["GITSYNC_", "GIT_SYNC_"];

/// Names of ours that no flag reads: set by git-sync for its hooks.
const SET_FOR_HOOKS: [&str; 1] = ["GITSYNC_HASH"];

/// Of the environment's variable `names`, those under git-sync's prefixes
/// that no flag reads, each with the known name it is closest to, if one
/// is close: `GITSYNC_REFF (GITSYNC_REF?)`. A Kubernetes service's own
/// variables (`GIT_SYNC_SERVICE_HOST`, `GIT_SYNC_PORT_80_TCP`... for a
/// Service named `git-sync`) are not git-sync's and are left out.
pub fn unknown(names: &[String]) -> Vec<String> {
    let known = known_names();
    let services: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix("_SERVICE_HOST"))
        .collect();
    let of_a_service = |name: &str| {
        services.iter().any(|s| {
            name.strip_prefix(s).is_some_and(|rest| {
                rest == "_PORT" || rest.starts_with("_PORT_") || rest.starts_with("_SERVICE_")
            })
        })
    };
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| PREFIXES.iter().any(|p| n.starts_with(p)))
        .filter(|n| !known.contains(n) && !SET_FOR_HOOKS.contains(&n.as_str()))
        .filter(|n| !of_a_service(n))
        .map(|n| match spelling::closest(n, without_prefix(n), &known) {
            Some(meant) => format!("{n} ({meant}?)"),
            None => n.clone(),
        })
        .collect();
    out.sort();
    out
}

/// `name` after git-sync's prefix: what a slip is measured against.
fn without_prefix(name: &str) -> &str {
    PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// Every variable name a flag may be set by.
fn known_names() -> Vec<String> {
    let mut known = Vec::new();
    for flag in FLAGS {
        if flag.env {
            known.extend(PREFIXES.iter().map(|p| flags::env_name(p, flag.name)));
        }
        known.extend(flag.extra_env.iter().map(|n| n.to_string()));
    }
    known
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_misspelt_name_is_named_with_the_one_meant() {
        let env = names(&[
            "GITSYNC_REFF",
            "GITSYNC_REF",
            "GIT_SYNC_PERIODE",
            "GITSYNC_WEBHOOK_URLS",
            "GITSYNC_SOMETHING_ELSE_ENTIRELY",
            "GIT_SYNC_DEST",
            "GIT_SYNC_WAIT",
            "GITSYNC_HASH",
            "HOME",
            "GITSYNCREPO",
        ]);
        assert_eq!(
            unknown(&env),
            [
                "GITSYNC_REFF (GITSYNC_REF?)",
                "GITSYNC_SOMETHING_ELSE_ENTIRELY",
                "GITSYNC_WEBHOOK_URLS (GITSYNC_WEBHOOK_URL?)",
                "GIT_SYNC_PERIODE (GIT_SYNC_PERIOD?)",
            ]
        );
    }

    #[test]
    fn a_kubernetes_services_variables_are_not_ours() {
        // A Service named git-sync (or git-sync-web) in the namespace.
        let env = names(&[
            "GIT_SYNC_SERVICE_HOST",
            "GIT_SYNC_SERVICE_PORT",
            "GIT_SYNC_SERVICE_PORT_HTTP",
            "GIT_SYNC_PORT",
            "GIT_SYNC_PORT_80_TCP",
            "GIT_SYNC_PORT_80_TCP_ADDR",
            "GIT_SYNC_WEB_SERVICE_HOST",
            "GIT_SYNC_WEB_PORT",
            "GITSYNC_PORT",
        ]);
        // (No Service named gitsync: that one is a slip.)
        assert_eq!(unknown(&env), ["GITSYNC_PORT"]);
    }
}
