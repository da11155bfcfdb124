//! The git config files git reads besides a repository's own: the
//! system's (`$GIT_CONFIG_SYSTEM`, else `/etc/gitconfig`; none with
//! `GIT_CONFIG_NOSYSTEM`) and the user's (`$GIT_CONFIG_GLOBAL` alone, else
//! `$XDG_CONFIG_HOME/git/config` then `~/.gitconfig`). libgit2 reads them
//! too, for what it does itself (`http.proxy`, `url.<base>.insteadOf`); the
//! keys git-sync acts on in its own code (credential helpers, the ssh
//! command, TLS, cookies) are read from them here, before `--git-config`,
//! as git reads them before the command line's. So a laptop's
//! `credential.helper=store` or `http.sslCAInfo` serves a local daemon as
//! it serves git, and a `/etc/gitconfig` mounted into a Pod serves as it
//! served upstream's git.

use std::path::{Path, PathBuf};

use super::gitconfig::{same_key, Entries};
use super::values::{parse_git_bool, under_home};

/// The keys taken from these files.
const KEPT: &[&str] = &[
    "core.sshCommand",
    "credential.helper",
    "credential.useHttpPath",
    "http.cookieFile",
    "http.sslCAInfo",
    "http.sslCAPath",
    "http.sslCert",
    "http.sslCertPasswordProtected",
    "http.sslKey",
    "http.sslVerify",
];

/// Keys whose value is a path, where git expands a leading `~/`.
const PATHS: &[&str] = &[
    "http.cookieFile",
    "http.sslCAInfo",
    "http.sslCAPath",
    "http.sslCert",
    "http.sslKey",
];

/// Nested `include.path`s followed at most, as in git.
const MAX_DEPTH: usize = 10;

/// Files read at most: files that include each other twice would
/// otherwise be read 2^10 times.
const MAX_FILES: usize = 64;

/// The files, in the order git reads them.
pub fn files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    let no_system = set("GIT_CONFIG_NOSYSTEM").is_some_and(|v| parse_git_bool(&v).unwrap_or(false));
    if !no_system {
        files.push(PathBuf::from(
            set("GIT_CONFIG_SYSTEM").unwrap_or_else(|| "/etc/gitconfig".into()),
        ));
    }
    if let Some(global) = set("GIT_CONFIG_GLOBAL") {
        files.push(PathBuf::from(global));
        return files;
    }
    let home = set("HOME").map(PathBuf::from);
    let xdg = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    files.extend(xdg.map(|x| x.join("git/config")));
    files.extend(home.map(|h| h.join(".gitconfig")));
    files
}

/// The kept keys' entries of `files`, in order (files not there or not
/// readable are passed over, as git passes over the ones not there).
pub fn entries(files: &[PathBuf], home: Option<&str>) -> Entries {
    let mut out = Entries::new();
    let mut budget = MAX_FILES;
    for file in files {
        read(file, home, 0, &mut budget, &mut out);
    }
    out
}

fn read(file: &Path, home: Option<&str>, depth: usize, budget: &mut usize, out: &mut Entries) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    for (key, value) in parse(&text) {
        if same_key(&key, "include.path") {
            let path = under_home(Path::new(&value), home);
            let path = match file.parent() {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path,
            };
            if depth < MAX_DEPTH {
                read(&path, home, depth + 1, budget, out);
            }
        } else if let Some(kept) = kept(&key) {
            let value = match PATHS.iter().any(|p| same_key(&kept, p)) || tls_for_some(&kept) {
                true => under_home(Path::new(&value), home)
                    .to_string_lossy()
                    .into_owned(),
                false => value,
            };
            out.push((kept, value));
        }
    }
}

/// The name `key` is kept under: one of [`KEPT`], or, as written, a
/// credential helper's key for some servers (`credential.<url>.helper`,
/// `credential.<url>.useHttpPath`) or a TLS file's (see [`tls_for_some`]).
fn kept(key: &str) -> Option<String> {
    if let Some(k) = KEPT.iter().find(|k| same_key(key, k)) {
        return Some(k.to_string());
    }
    let lower = key.to_ascii_lowercase();
    let scoped_credential = lower.starts_with("credential.")
        && (lower.ends_with(".helper") || lower.ends_with(".usehttppath"));
    (scoped_credential || tls_for_some(key)).then(|| key.to_string())
}

/// Whether `key` names a CA or client certificate file for some servers
/// (`http.<url>.sslCAInfo`, `.sslCAPath`, `.sslCert`, `.sslKey`).
fn tls_for_some(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let Some((_, name)) = lower.strip_prefix("http.").and_then(|r| r.rsplit_once('.')) else {
        return false;
    };
    matches!(name, "sslcainfo" | "sslcapath" | "sslcert" | "sslkey")
}

/// The `section[.subsection].name` keys and values of a git config text:
/// `[section]`, `[section "subsection"]` and `[section.subsection]`
/// headers, a key without `=` meaning true, quotes, `\` escapes and line
/// continuations, `#` and `;` comments. A line git would refuse is passed
/// over.
fn parse(text: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' || c == ';' {
            while chars.next_if(|&c| c != '\n').is_some() {}
        } else if c == '[' {
            chars.next();
            let header: String =
                std::iter::from_fn(|| chars.next_if(|&c| c != ']' && c != '\n')).collect();
            chars.next_if_eq(&']');
            section = section_name(&header);
        } else if c.is_ascii_alphabetic() {
            let name: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '-'))
                    .collect();
            while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
            let value = match chars.peek() {
                Some('=') => {
                    chars.next();
                    value(&mut chars)
                }
                None | Some('\n' | '\r' | '#' | ';') => "true".to_string(),
                Some(_) => {
                    // `name junk`: not git config.
                    while chars.next_if(|&c| c != '\n').is_some() {}
                    continue;
                }
            };
            if !section.is_empty() {
                entries.push((format!("{section}.{}", name.to_ascii_lowercase()), value));
            }
        } else {
            // Not git config: the rest of the line is passed over.
            while chars.next_if(|&c| c != '\n').is_some() {}
        }
    }
    entries
}

/// `section "sub"` as `section.sub` (the subsection as written), or
/// `section.sub` (the old form) lower-cased.
fn section_name(header: &str) -> String {
    match header.split_once('"') {
        Some((section, rest)) => {
            let mut sub = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => sub.extend(chars.next()),
                    c => sub.push(c),
                }
            }
            format!("{}.{sub}", section.trim().to_ascii_lowercase())
        }
        None => header.trim().to_ascii_lowercase(),
    }
}

/// A value after its `=`, to the end of its (continued) line: blanks
/// outside quotes count between other characters only.
fn value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut value = String::new();
    let mut blanks = String::new();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let piece = match c {
            '\n' if !quoted => break,
            '#' | ';' if !quoted => {
                while chars.next_if(|&c| c != '\n').is_some() {}
                continue;
            }
            c if c.is_whitespace() && !quoted => {
                if !value.is_empty() {
                    blanks.push(c);
                }
                continue;
            }
            '"' => {
                quoted = !quoted;
                None
            }
            '\\' => match chars.next() {
                Some('n') => Some('\n'),
                Some('t') => Some('\t'),
                Some('b') => {
                    value.pop();
                    None
                }
                Some('\n') | None => None,
                Some(other) => Some(other),
            },
            c => Some(c),
        };
        value.push_str(&blanks);
        blanks.clear();
        value.extend(piece);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_config_syntax() {
        let text = "# a comment\n\
                    [core]\n\tsshCommand = ssh -i \"/keys/my key\" ; a comment\n\
                    [credential]\n  helper =\n  helper = store --file=~/creds\n\
                    [http \"https://Git.Example/\"]\n  sslVerify\n\
                    [HTTP]  sslCAInfo = /ca.pem\n\
                    [http.Old]\n  proxy = a\\\n  b \"#x\" c\\t\n\
                    not git config\n";
        let parsed = parse(text);
        let pairs: Vec<(&str, &str)> = parsed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("core.sshcommand", "ssh -i /keys/my key"),
                ("credential.helper", ""),
                ("credential.helper", "store --file=~/creds"),
                ("http.https://Git.Example/.sslverify", "true"),
                ("http.sslcainfo", "/ca.pem"),
                ("http.old.proxy", "a  b #x c\t"),
            ]
        );
    }

    #[test]
    fn the_files_git_reads_and_the_keys_taken_from_them() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = PathBuf::from;
        assert_eq!(
            files(&env(&[("HOME", "/home/me")])),
            [
                p("/etc/gitconfig"),
                p("/home/me/.config/git/config"),
                p("/home/me/.gitconfig")
            ]
        );
        assert_eq!(
            files(&env(&[
                ("HOME", "/home/me"),
                ("GIT_CONFIG_NOSYSTEM", "1"),
                ("XDG_CONFIG_HOME", "/x")
            ])),
            [p("/x/git/config"), p("/home/me/.gitconfig")]
        );
        assert_eq!(
            files(&env(&[
                ("GIT_CONFIG_SYSTEM", "/s"),
                ("GIT_CONFIG_GLOBAL", "/g")
            ])),
            [p("/s"), p("/g")]
        );

        let dir = tempfile::TempDir::new().unwrap();
        let main = dir.path().join("gitconfig");
        std::fs::write(
            &main,
            "[user]\n name = Me\n[include]\n path = more\n[http]\n sslCAInfo = ~/ca.pem\n sslverify = false\n\
             [credential \"https://Src.example\"]\n helper = gcloud.sh\n useHttpPath\n\
             [http \"https://Git.example/Org\"]\n sslCert = ~/org.crt\n postBuffer = 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("more"),
            "[credential]\n helper = store\n[include]\n path = more\n",
        )
        .unwrap();
        // Files that include one another twice over stop at a bound
        // (without it, 2^10 reads).
        let twice = dir.path().join("twice");
        std::fs::write(
            &twice,
            "[credential]\n helper = store\n[include]\n path = twice\n path = twice\n",
        )
        .unwrap();
        assert_eq!(entries(std::slice::from_ref(&twice), None).len(), MAX_FILES);
        let got = entries(&[main, dir.path().join("absent")], Some("/home/me"));
        let store = ("credential.helper".to_string(), "store".to_string());
        assert_eq!(got.iter().filter(|e| **e == store).count(), MAX_DEPTH);
        assert_eq!(
            got[MAX_DEPTH..],
            [
                ("http.sslCAInfo".to_string(), "/home/me/ca.pem".to_string()),
                ("http.sslVerify".to_string(), "false".to_string()),
                (
                    "credential.https://Src.example.helper".to_string(),
                    "gcloud.sh".to_string()
                ),
                (
                    "credential.https://Src.example.usehttppath".to_string(),
                    "true".to_string()
                ),
                (
                    "http.https://Git.example/Org.sslcert".to_string(),
                    "/home/me/org.crt".to_string()
                ),
            ]
        );
    }
}
