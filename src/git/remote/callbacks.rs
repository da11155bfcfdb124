//! What libgit2 asks of us during a remote operation: credentials (each
//! way once, then a message naming which failed, never what), host keys
//! and certificates; and which servers its connections may reach.

use std::cell::RefCell;

use git2::RemoteCallbacks;

use super::super::{http_config, proxy, ssh_key, stream, Cancel, CredentialSet, SshAuth};

/// Where the connections to the remote `url` (through `proxied`) may go
/// when `headers` hold an `Authorization` or `Cookie` header (see
/// [`stream::Confinement`]); `None`: anywhere.
pub(super) fn confinement(
    url: &str,
    proxied: Option<&proxy::Proxy>,
    headers: &[String],
) -> Option<stream::Confinement> {
    if !http_config::any_named(headers, &["authorization", "cookie"]) {
        return None;
    }
    let (scheme, host, port) = proxy::http_origin(url)?;
    let mut allowed = vec![(host.clone(), port)];
    if scheme == "http" {
        allowed.push((host.clone(), 443));
    }
    if let Some((_, proxy_host, proxy_port)) = proxied.and_then(|p| proxy::http_origin(&p.url)) {
        allowed.push((proxy_host, proxy_port));
    }
    let shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Some(stream::Confinement {
        origin: format!("{scheme}://{shown}:{port}"),
        allowed,
    })
}

/// Why SSH authentication failed once every key file (and the ssh-agent,
/// when `agent`) was tried: the problems of the files that could not be
/// offered come first, as they are the likely fix.
fn no_ssh_key_left(
    user: &str,
    keys: &[std::path::PathBuf],
    offered: usize,
    unusable: &[String],
    agent: bool,
) -> String {
    let files = no_ssh_key_file_left(user, keys, offered, unusable);
    if agent {
        format!("{files}; the ssh-agent at SSH_AUTH_SOCK had no key the server accepted")
    } else {
        files
    }
}

fn no_ssh_key_file_left(
    user: &str,
    keys: &[std::path::PathBuf],
    offered: usize,
    unusable: &[String],
) -> String {
    let problems = unusable.join("; ");
    match (offered, unusable.is_empty()) {
        (0, true) => {
            let names: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
            format!("no SSH key file found (--ssh-key-file: {})", names.join(", "))
        }
        (0, false) => problems,
        (n, true) => format!("SSH authentication as {user:?} failed with every key of --ssh-key-file ({n} tried)"),
        (n, false) => format!("SSH authentication as {user:?} failed with every key of --ssh-key-file ({n} tried); {problems}"),
    }
}

/// The callbacks of one remote operation: cancellation through progress,
/// credentials from `creds` (over SSH, `ssh`'s keys), SSH host keys
/// checked against `ssh`'s known_hosts (`ssh_port` to look them up; why one was refused kept in
/// `hostkey_error`, as libgit2 loses the message), TLS certificates.
pub(super) fn callbacks<'a>(
    cancel: &'a Cancel,
    creds: &'a CredentialSet,
    ssh: Option<SshAuth>,
    ssh_port: u16,
    verify_tls: bool,
    hostkey_error: &'a RefCell<Option<String>>,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.transfer_progress(move |_| !cancel.is_cancelled());
    cb.sideband_progress(move |_| !cancel.is_cancelled());
    // libgit2 asks again after each rejection: answer each way once (each
    // SSH key once), then give up with a message that names which, never
    // what, credentials failed.
    let mut given_user: Option<String> = None;
    let mut next_key = 0usize;
    let mut asked_agent = false;
    let mut offered = 0usize;
    let mut unusable: Vec<String> = Vec::new();
    let host_check = ssh.clone();
    cb.credentials(move |request_url, user_from_url, allowed| {
        let user = user_from_url.unwrap_or("git");
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            let keys = ssh.as_ref().map(|s| s.key_files.as_slice()).unwrap_or_default();
            let agent = ssh.as_ref().is_some_and(|s| s.agent);
            while let Some(key) = keys.get(next_key) {
                next_key += 1;
                // Only a file that is not there is skipped quietly: one in a
                // directory we may not enter is a problem to report.
                if std::fs::metadata(key).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                    tracing::debug!(key = %key.display(), "SSH key file not found, skipped");
                    continue;
                }
                match ssh_key::check(key) {
                    Ok(()) => {
                        offered += 1;
                        return git2::Cred::ssh_key(user, None, key, None);
                    }
                    Err(problem) => {
                        tracing::debug!(key = %key.display(), %problem, "SSH key file skipped");
                        unusable.push(format!("SSH key file {} {problem}", key.display()));
                    }
                }
            }
            if agent && !asked_agent {
                asked_agent = true;
                tracing::debug!("offering the keys of the ssh-agent at SSH_AUTH_SOCK");
                return git2::Cred::ssh_key_from_agent(user);
            }
            return Err(git2::Error::from_str(&no_ssh_key_left(user, keys, offered, &unusable, agent)));
        }
        if allowed.contains(git2::CredentialType::USERNAME) {
            return git2::Cred::username(user);
        }
        if let Some(given) = &given_user {
            creds.rejected(request_url);
            return Err(git2::Error::from_str(&format!("authentication as {given:?} was rejected")));
        }
        let c = match creds.for_url_or_helpers(request_url) {
            Ok(c) => c,
            Err(_) if creds.default.is_some() => {
                return Err(git2::Error::from_str(&format!(
                    "the server requires authentication, and the repository's credentials are for {} only (as git's, \
                     which match by host): give --credential for this URL",
                    creds.default_server().unwrap_or_default()
                )));
            }
            Err(silent) => {
                let helpers = match silent.as_slice() {
                    [] => String::new(),
                    names => format!("; the credential helpers asked ({}) had none for it", names.join(", ")),
                };
                return Err(git2::Error::from_str(&format!(
                    "the server requires authentication and none is configured (--username, --credential, \
                     --askpass-url, a .netrc, a credential helper){helpers}"
                )));
            }
        };
        given_user = Some(c.username.clone());
        if !allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
            return Err(git2::Error::from_str("the server does not accept username/password authentication"));
        }
        git2::Cred::userpass_plaintext(&c.username, &c.password)
    });
    cb.certificate_check(move |cert, host| {
        if let Some(c) = stream::confinement().filter(|c| !c.allows_host(host)) {
            return Err(git2::Error::from_str(&c.refusal(host, 443)));
        }
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: libgit2 verifies the certificate chain itself, unless
            // http.sslVerify=false was configured (for this URL).
            return Ok(if verify_tls {
                git2::CertificateCheckStatus::CertificatePassthrough
            } else {
                git2::CertificateCheckStatus::CertificateOk
            });
        };
        let Some(ssh) = host_check.as_ref().filter(|s| s.known_hosts.is_some()) else {
            return Ok(git2::CertificateCheckStatus::CertificateOk);
        };
        let Some(key) = hostkey.hostkey() else {
            return Err(git2::Error::from_str(
                "the SSH server's host key is not available to check",
            ));
        };
        ssh.check_host_key(host, ssh_port, key)
            .map(|()| git2::CertificateCheckStatus::CertificateOk)
            .map_err(|e| {
                // libgit2 replaces this message by a generic one: keep ours.
                *hostkey_error.borrow_mut() = Some(e.to_string());
                git2::Error::from_str(&e.to_string())
            })
    });
    cb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_headers_for_the_server_confine_its_connections() {
        let headers = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let url = "http://Git.Example.com/org/site.git";
        assert!(confinement(url, None, &headers(&["X-Trace: 1"])).is_none());
        assert!(confinement("ssh://git@h/r", None, &headers(&["Cookie: a=b"])).is_none());
        let proxy = proxy::Proxy::parse("http://user:pw@proxy.local:3128").unwrap();
        let c = confinement(url, Some(&proxy), &headers(&["cookie : a=b"])).unwrap();
        assert_eq!(c.origin, "http://git.example.com:80");
        assert_eq!(
            c.allowed,
            vec![
                ("git.example.com".to_string(), 80),
                ("git.example.com".to_string(), 443),
                ("proxy.local".to_string(), 3128),
            ]
        );
        assert!(c.allows_host("GIT.example.com") && !c.allows_host("other.example.com"));
        let c = confinement(
            "https://[::1]:8443/r",
            None,
            &headers(&["Authorization: x"]),
        )
        .unwrap();
        assert_eq!(c.origin, "https://[::1]:8443");
        assert_eq!(c.allowed, vec![("::1".to_string(), 8443)]);
    }
}
