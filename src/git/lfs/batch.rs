//! Asking a Git LFS server for objects over HTTP(S): its batch API
//! (`POST <endpoint>/objects/batch`, git-lfs's `docs/api/batch.md`) says
//! where each object is, then each is downloaded with the `basic`
//! transfer (a `GET` of the URL it gave, with the headers it gave).
//!
//! The endpoint is where git-lfs finds it: `lfs.url` (or
//! `remote.origin.lfsurl`) in the git config or the commit's
//! `.lfsconfig`, else the repository's URL with `.git/info/lfs` after it,
//! an SSH URL's host reached over HTTPS.

use std::io::Write;

use super::super::http_config::split_header;
use super::super::ssh_url::SshUrl;
use super::super::{Cancel, HelperAsker};
use super::pointer::Pointer;
use super::retry::{refused, status_may_pass, unanswered, Retries};
use super::Failure;
use crate::redact::redact;

/// How many objects one batch request asks about (git-lfs's default).
const BATCH_SIZE: usize = 100;

/// The media type of the batch API's requests and answers.
const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The largest batch answer read: 100 objects' URLs and headers.
const MAX_ANSWER: u64 = 16 << 20;

/// The LFS endpoint git-lfs derives from a repository's URL: HTTP(S) as it
/// is, an SSH or `git://` URL's host and path over HTTPS (its port left
/// out); `.git/info/lfs` after a path without `.git`, `/info/lfs` after
/// one with it. `None` for other URLs (a local path).
pub(crate) fn endpoint_of(url: &str) -> Option<String> {
    let base = if url.starts_with("https://") || url.starts_with("http://") {
        url.to_string()
    } else if let Some(rest) = url.strip_prefix("git://") {
        let (authority, path) = rest.split_at(rest.find('/')?);
        let host = super::super::ssh_url::split_port(authority)?.0;
        format!("https://{host}{path}")
    } else {
        let ssh = SshUrl::parse(url)?;
        let host = match ssh.host.contains(':') {
            true => format!("[{}]", ssh.host),
            false => ssh.host,
        };
        let path = ssh.path.trim_start_matches('/');
        format!("https://{host}/{path}")
    };
    let base = base.trim_end_matches('/');
    Some(match base.ends_with(".git") {
        true => format!("{base}/info/lfs"),
        false => format!("{base}.git/info/lfs"),
    })
}

/// An object's download: where, and the headers the server asked for.
#[derive(Debug)]
pub(crate) struct Download {
    pub pointer: Pointer,
    href: String,
    headers: Vec<(String, String)>,
}

/// An LFS server, and what its requests carry.
pub(crate) struct Server<'a> {
    pub agent: ureq::Agent,
    /// The endpoint, without credentials and a trailing slash.
    pub endpoint: String,
    /// `Name: value` headers for it (`http.extraHeader`, cookies).
    pub headers: Vec<String>,
    /// The username and password it gets, if any are configured.
    pub basic: Option<(String, String)>,
    /// Asked when it wants credentials and `basic` is `None`.
    pub helpers: Option<&'a HelperAsker>,
    /// The `Authorization` header sent, once it wanted one.
    pub authorization: Option<String>,
    /// How a request that failed in a way that may pass is made again.
    pub retries: Retries,
}

impl Server<'_> {
    /// Where to download `objects`, asked in batches: for each, its
    /// download, or why the server will not give it.
    pub fn locate(
        &mut self,
        objects: &[Pointer],
        cancel: &Cancel,
    ) -> Result<Vec<Result<Download, String>>, Failure> {
        let mut found = Vec::with_capacity(objects.len());
        for batch in objects.chunks(BATCH_SIZE) {
            if cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            let retries = self.retries;
            found.extend(retries.run("batch", cancel, || self.ask(batch))?);
        }
        Ok(found)
    }

    /// One batch request: the download of each of `objects`.
    fn ask(&mut self, objects: &[Pointer]) -> Result<Vec<Result<Download, String>>, Failure> {
        let url = format!("{}/objects/batch", self.endpoint);
        let body = serde_json::json!({
            "operation": "download",
            "transfers": ["basic"],
            "objects": objects.iter().map(|p| serde_json::json!({"oid": p.oid, "size": p.size})).collect::<Vec<_>>(),
            "hash_algo": "sha256",
        })
        .to_string();
        let send = |authorization: Option<&str>| {
            let mut request = self
                .agent
                .post(&url)
                .header("Accept", LFS_JSON)
                .header("Content-Type", LFS_JSON);
            for (name, value) in self.headers.iter().filter_map(|h| split_header(h)) {
                request = request.header(name, value);
            }
            if let Some(a) = authorization {
                request = request.header("Authorization", a);
            }
            request.send(body.as_bytes())
        };
        let failed = |e: ureq::Error| {
            let why = format!(
                "batch request to {}: {}",
                redact(&url),
                redact(&e.to_string())
            );
            unanswered(why, &e)
        };
        let mut answer = send(self.authorization.as_deref()).map_err(failed)?;
        let mut helped = false;
        if answer.status() == 401 && self.authorization.is_none() {
            let login = match &self.basic {
                Some(login) => Some(login.clone()),
                None => self
                    .helpers
                    .and_then(|h| h.0.ask(&self.endpoint).ok())
                    .map(|c| (c.username, c.password)),
            };
            helped = self.basic.is_none() && login.is_some();
            let Some((user, password)) = login else {
                return Err(format!(
                    "{} wants credentials, and none are configured for it",
                    redact(&url)
                )
                .into());
            };
            self.authorization = Some(super::super::ls_refs::basic(&user, &password));
            answer = send(self.authorization.as_deref()).map_err(failed)?;
        }
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let text = answer
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| {
                Failure::passing(format!(
                    "batch answer of {}: {}",
                    redact(&url),
                    redact(&e.to_string())
                ))
            })?;
        if status != 200 {
            if helped && status == 401 {
                // (A helper's answer is not used again without asking.)
                if let Some(h) = self.helpers {
                    h.0.rejected(&self.endpoint);
                }
            }
            let why = match status {
                401 | 403 if self.authorization.is_none() => "refused without credentials",
                401 | 403 => "the credentials were refused",
                404 => "no LFS server there, or no such repository",
                429 => "too many requests",
                s if status_may_pass(s) => "the server failed",
                _ => "refused",
            };
            let why = format!(
                "batch request to {}: HTTP status {status}: {why}{}",
                redact(&url),
                server_message(&text)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
            return Err(refused(why, status, &headers));
        }
        let context = |e: String| format!("batch answer of {}: {e}", redact(&url));
        let found = read_batch(&text, objects).map_err(|e| Failure::Failed(context(e)))?;
        Ok(found.into_iter().map(|d| d.map_err(context)).collect())
    }

    /// Download `d` into `out`, checking its size and hash as it comes.
    pub fn download(
        &self,
        d: &Download,
        out: &mut dyn Write,
        cancel: &Cancel,
    ) -> Result<(), Failure> {
        // Our headers and credentials go only where they went already: the
        // endpoint's own server. The answer's headers come first (a
        // storage service's signed URL carries its own credentials).
        let mut headers: Vec<(&str, &str)> = d
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if same_origin(&d.href, &self.endpoint) {
            let ours = self.headers.iter().filter_map(|h| split_header(h));
            let ours = ours.chain(self.authorization.as_deref().map(|a| ("Authorization", a)));
            for (name, value) in ours {
                if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    headers.push((name, value));
                }
            }
        }
        let mut request = self.agent.get(&d.href);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let shown = without_query(&d.href);
        let mut answer = request.call().map_err(|e| {
            let why = format!("download from {shown}: {}", redact(&e.to_string()));
            unanswered(why, &e)
        })?;
        let status = answer.status().as_u16();
        if status != 200 {
            let why = format!("download from {shown}: HTTP status {status}");
            return Err(refused(why, status, answer.headers()));
        }
        // (ureq's default limit is 10 MB: the object's size is the limit.)
        let body = answer
            .body_mut()
            .with_config()
            .limit(d.pointer.size + 1)
            .reader();
        let context = |why: String| format!("download from {shown}: {}", redact(&why));
        super::copy_checked(body, out, &d.pointer, cancel).map_err(|e| match e {
            Failure::Failed(why) => Failure::Failed(context(why)),
            Failure::Passing { why, after } => Failure::Passing {
                why: context(why),
                after,
            },
            cancelled => cancelled,
        })
    }
}

/// The endpoint and headers (`Name: value`) of what
/// `git-lfs-authenticate` printed: `{"href": ..., "header": {...}}`.
pub(crate) fn read_authenticate(text: &str) -> Result<(String, Vec<String>), String> {
    let said: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| "git-lfs-authenticate printed no JSON".to_string())?;
    let href = said
        .get("href")
        .and_then(|h| h.as_str())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
        .ok_or("git-lfs-authenticate gave no HTTP(S) href")?;
    let headers = header_pairs(&said)
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    Ok((href.trim_end_matches('/').to_string(), headers))
}

/// The downloads a batch answer gives for `asked`, or why not.
fn read_batch(text: &str, asked: &[Pointer]) -> Result<Vec<Result<Download, String>>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    if let Some(transfer) = answer.get("transfer").and_then(|t| t.as_str()) {
        if transfer != "basic" {
            return Err(format!(
                "transfer {transfer:?} where \"basic\" was asked for"
            ));
        }
    }
    let objects = answer
        .get("objects")
        .and_then(|o| o.as_array())
        .ok_or("no \"objects\" list")?;
    Ok(asked.iter().map(|p| download_of(objects, p)).collect())
}

/// The download the batch answer's `objects` give for `pointer`, or why
/// there is none.
fn download_of(objects: &[serde_json::Value], pointer: &Pointer) -> Result<Download, String> {
    let object = objects
        .iter()
        .find(|o| o.get("oid").and_then(|v| v.as_str()) == Some(pointer.oid.as_str()))
        .ok_or_else(|| format!("nothing said of object {}", pointer.oid))?;
    if let Some(error) = object.get("error") {
        let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
        let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return Err(format!(
            "object {}: error {code} {}",
            pointer.oid,
            redact(message)
        ));
    }
    let download = object
        .get("actions")
        .and_then(|a| a.get("download"))
        .ok_or_else(|| format!("no download for object {}", pointer.oid))?;
    let href = download
        .get("href")
        .and_then(|h| h.as_str())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
        .ok_or_else(|| format!("no HTTP(S) href for object {}", pointer.oid))?;
    Ok(Download {
        pointer: pointer.clone(),
        href: href.to_string(),
        headers: header_pairs(download),
    })
}

/// The `"header"` object of an LFS answer's `value`, as (name, value).
fn header_pairs(value: &serde_json::Value) -> Vec<(String, String)> {
    let Some(header) = value.get("header").and_then(|h| h.as_object()) else {
        return Vec::new();
    };
    header
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// The `message` of a JSON error answer, if it is one.
fn server_message(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let message = value.get("message")?.as_str()?;
    Some(redact(&message.chars().take(200).collect::<String>()))
}

/// `url` without its query, where a signed URL keeps its signature.
fn without_query(url: &str) -> String {
    redact(url.split(['?', '#']).next().unwrap_or(url))
}

/// Whether `a` and `b` have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| super::super::proxy::http_origin(u);
    origin(a).is_some() && origin(a) == origin(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_as_git_lfs_derives_them() {
        for (url, endpoint) in [
            ("https://h/org/r", "https://h/org/r.git/info/lfs"),
            ("https://h/org/r.git", "https://h/org/r.git/info/lfs"),
            ("https://h/org/r.git/", "https://h/org/r.git/info/lfs"),
            (
                "http://127.0.0.1:8080/r",
                "http://127.0.0.1:8080/r.git/info/lfs",
            ),
            ("ssh://git@h:2222/org/r.git", "https://h/org/r.git/info/lfs"),
            ("git@h:org/r.git", "https://h/org/r.git/info/lfs"),
            ("git://h:9418/org/r", "https://h/org/r.git/info/lfs"),
        ] {
            assert_eq!(endpoint_of(url).as_deref(), Some(endpoint), "{url}");
        }
        assert_eq!(endpoint_of("/srv/r.git"), None);
        assert_eq!(endpoint_of("file:///srv/r.git"), None);
    }

    #[test]
    fn what_git_lfs_authenticate_prints() {
        let said = r#"{"href":"https://h/o/r.git/info/lfs/","header":{"Authorization":"RemoteAuth x"},"expires_in":3600}"#;
        let (href, headers) = read_authenticate(said).unwrap();
        assert_eq!(href, "https://h/o/r.git/info/lfs");
        assert_eq!(headers, ["Authorization: RemoteAuth x"]);
        assert!(read_authenticate("Permission denied").is_err());
        assert!(read_authenticate(r#"{"href":"file:///x"}"#).is_err());
    }

    #[test]
    fn batch_answers() {
        let oid = "a".repeat(64);
        let asked = [Pointer {
            oid: oid.clone(),
            size: 3,
        }];
        let ok = format!(
            r#"{{"transfer":"basic","objects":[{{"oid":"{oid}","size":3,"actions":{{"download":{{"href":"https://s/o?sig=x","header":{{"X-A":"1"}}}}}}}}]}}"#
        );
        let d = read_batch(&ok, &asked).unwrap().remove(0).unwrap();
        assert_eq!(d.href, "https://s/o?sig=x");
        assert_eq!(d.headers, [("X-A".to_string(), "1".to_string())]);
        // What is wrong with one object is said of it alone.
        let missing = format!(
            r#"{{"objects":[{{"oid":"{oid}","size":3,"error":{{"code":404,"message":"Object does not exist"}}}}]}}"#
        );
        let e = read_batch(&missing, &asked).unwrap().remove(0).unwrap_err();
        assert!(e.contains("404 Object does not exist"), "{e}");
        for bad in [
            r#"{"objects":[]}"#.to_string(),
            format!(
                r#"{{"objects":[{{"oid":"{oid}","size":3,"actions":{{"download":{{"href":"file:///etc/passwd"}}}}}}]}}"#
            ),
        ] {
            assert!(read_batch(&bad, &asked).unwrap()[0].is_err(), "{bad}");
        }
        for bad in [
            "nonsense".to_string(),
            format!(r#"{{"transfer":"ssh","objects":[{{"oid":"{oid}","size":3}}]}}"#),
        ] {
            assert!(read_batch(&bad, &asked).is_err(), "{bad}");
        }
        assert_eq!(
            without_query("https://u:p@s/o?sig=x"),
            redact("https://u:p@s/o")
        );
        assert!(same_origin("https://h/a", "https://h:443/b"));
        assert!(!same_origin("https://h/a", "http://h/a"));
        assert!(!same_origin("https://h/a", "https://g/a"));
    }
}
