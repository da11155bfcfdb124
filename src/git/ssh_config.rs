//! The user's `~/.ssh/config`, which OpenSSH (upstream's `ssh`) reads for
//! a host's `HostName`, `Port`, `User`, `IdentityFile`... and git-sync,
//! whose SSH runs in process, does not: whether it has a `Host` block for
//! the repository's host, so that a sync failing for want of those
//! settings says why.

use super::known_hosts::glob;
use super::ssh_ls_refs::SshPlace;

/// The patterns of the first `Host` line of `config` (an ssh_config text)
/// that names the host of the SSH URL `url`; `Host *` (every host's
/// defaults) is passed over. `None` for another URL or no such line.
pub fn host_entry(url: &str, config: &str) -> Option<String> {
    let host = SshPlace::parse(url)?.host.to_ascii_lowercase();
    config.lines().find_map(|line| {
        let line = line.trim();
        let (keyword, rest) = line.split_once(|c: char| c == '=' || c.is_whitespace())?;
        if !keyword.eq_ignore_ascii_case("host") {
            return None;
        }
        let patterns = rest.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
        let words: Vec<&str> = patterns.split_whitespace().collect();
        let every_host = words.iter().all(|w| *w == "*");
        (!every_host && names(&words, &host)).then(|| patterns.to_string())
    })
}

/// Whether `patterns` (OpenSSH's: `*`, `?`, and `!` excluding) name `host`.
fn names(patterns: &[&str], host: &str) -> bool {
    let mut named = false;
    for p in patterns {
        let (negated, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, *p),
        };
        if glob(p.to_ascii_lowercase().as_bytes(), host.as_bytes()) {
            if negated {
                return false;
            }
            named = true;
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::host_entry;

    #[test]
    fn a_host_block_for_the_repositorys_host_is_found() {
        let config = "# mine\n\
                      Host *\n  ServerAliveInterval 30\n\
                      Host work-gh github.com !gist.github.com\n  IdentityFile ~/.ssh/work\n\
                      Host=*.corp.example\n  Port 2222\n";
        let entry = |url: &str| host_entry(url, config);
        assert_eq!(
            entry("git@github.com:org/site.git").as_deref(),
            Some("work-gh github.com !gist.github.com")
        );
        assert_eq!(
            entry("ssh://git@Work-GH/org/site.git").as_deref(),
            Some("work-gh github.com !gist.github.com")
        );
        assert_eq!(
            entry("ssh://git.corp.example:22/r.git").as_deref(),
            Some("*.corp.example")
        );
        for none in [
            "git@gist.github.com:x.git",
            "git@gitlab.com:org/site.git",
            "https://github.com/org/site.git",
            "/srv/site.git",
        ] {
            assert_eq!(entry(none), None, "{none}");
        }
    }
}
