//! Asking an HTTP(S) remote what the refs we want point at, with git's
//! protocol v2: `ls-refs` with a `ref-prefix` for each name `--ref` may
//! mean, so the server sends those refs, not every ref it has.
//!
//! libgit2 1.9 speaks protocol v0 only, whose first answer lists every ref:
//! a GitHub repository advertises `refs/pull/<n>/head` and `/merge` for
//! each pull request ever opened, megabytes a poll for a large project
//! (3.4 MB for 50,000 refs). Upstream's `git ls-remote <url> <ref>` gets
//! them all too, even over v2: its patterns match the ends of names, which
//! no prefix expresses. A server that speaks v0 only answers the same
//! request with that advertisement, which is then read here as it is,
//! rather than asked for again through libgit2.
//!
//! A server known to speak v2 is sent `ls-refs` at once at the next polls
//! (one round trip, as a v0 listing), on a connection kept between polls
//! (no TCP or TLS handshake each time). Whatever this does not handle, it
//! leaves to libgit2's listing, which then says what is wrong in its
//! words: a proxy to go through, a redirect to another server (one within
//! the server, as for a renamed repository, is followed as git follows it),
//! a refusal, credentials that do not work, a page that is not git's, a
//! name only a look at every ref resolves (`pull/1/head`).
//!
//! The same client, with the same headers and credentials, sends a server
//! that answered with v2 the `fetch` command (see [`command`] and
//! `fetch_v2.rs`).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::pkt_line::{self, Pkt, PktLines};
use super::{fetch_v2, http_config};
use super::{Cancel, Hash, HelperAsker};
use crate::config::gitconfig::Tls;

/// What the client is made from, set once at start (the client itself is
/// made at the first listing: a sync from a local path never needs it).
static SETTINGS: OnceLock<(Duration, Tls)> = OnceLock::new();
/// The clients, each with the count of CA changes it was made after (see
/// `tls::generation`): one kept from poll to poll, with its connection,
/// until a rotated CA file or client certificate needs a new one.
/// One client per way of reaching servers: checking TLS certificates or
/// not (for the URLs `http.<url>.sslVerify=false` names), with which CAs
/// and client certificate (`http.<url>.sslCAInfo`...), through which
/// proxy, if any; each made when first needed.
static AGENTS: Mutex<Vec<(Reach, u64, ureq::Agent)>> = Mutex::new(Vec::new());

/// How a client reaches servers: its TLS settings, and the URL of the
/// proxy it goes through.
type Reach = (Tls, Option<String>);

/// The largest answer read: a v0 advertisement beyond it is left to libgit2.
const MAX_ANSWER: u64 = 64 << 20;

const USER_AGENT: &str = concat!("git/2.0 (git-sync v", env!("CARGO_PKG_VERSION"), ")");

/// Remember how to make the client: `timeout` bounds each request.
pub(super) fn init(timeout: Duration, tls: &Tls) {
    let _ = SETTINGS.set((timeout, tls.clone()));
}

/// What the client is made from (the network timeout and TLS settings
/// `init` was given), for other clients of git servers (`lfs.rs`).
pub(super) fn settings() -> Option<&'static (Duration, Tls)> {
    SETTINGS.get()
}

/// What bounds each request (the network timeout `init` was given).
pub(super) fn timeout() -> Duration {
    SETTINGS
        .get()
        .map_or(Duration::from_secs(120), |(timeout, _)| *timeout)
}

/// The client for the requests of `req`, or why there is none.
fn agent(req: &Request<'_>) -> Result<ureq::Agent, NoListing> {
    let (timeout, tls) = SETTINGS
        .get()
        .ok_or_else(|| NoListing::Skipped("no HTTP client".into()))?;
    let generation = super::tls::generation();
    let mut agents = crate::lock(&AGENTS);
    agents.retain(|(_, made_after, _)| *made_after == generation);
    let tls = Tls {
        verify: req.verify_tls,
        ..super::tls::for_url(tls, req.settings_url)
    };
    let kept = agents
        .iter()
        .find(|((t, proxy), _, _)| *t == tls && proxy.as_deref() == req.proxy);
    if let Some((_, _, agent)) = kept {
        return Ok(agent.clone());
    }
    let agent = crate::credentials::git_http_agent(*timeout, &tls, USER_AGENT, req.proxy)
        .map_err(NoListing::Skipped)?;
    let reach = (tls, req.proxy.map(str::to_string));
    agents.push((reach, generation, agent.clone()));
    Ok(agent)
}

/// The refs `git_ref` may name, as prefixes for `ls-refs` (see
/// `refs::pick_ref`): itself when `HEAD` or a full name, else its tag and
/// its branch.
pub(super) fn prefixes(git_ref: &str) -> Vec<String> {
    if git_ref == "HEAD" || git_ref.starts_with("refs/") {
        vec![git_ref.to_string()]
    } else {
        vec![
            format!("refs/tags/{git_ref}"),
            format!("refs/heads/{git_ref}"),
        ]
    }
}

/// What a server was found to want and speak, for the next polls.
#[derive(Debug, Default, Clone)]
pub(super) struct Known {
    /// Where it redirected the repository's URL to, on the same server
    /// (a renamed GitHub repository, a URL without `.git`): asked there.
    pub moved_to: Option<String>,
    /// It asked for credentials: they are sent at once.
    pub wants_credentials: bool,
    /// It answered with protocol v2: its capabilities are not asked for
    /// again.
    pub speaks_v2: bool,
    /// Its v2 `fetch` takes a `filter` (`uploadpack.allowFilter`).
    pub filters: bool,
    /// When it answered in a way not handled here, and the count of CA
    /// changes then (`tls::generation`): libgit2 lists its refs for
    /// [`ASK_AGAIN_AFTER`] (a server is reconfigured), or until a CA file
    /// or client certificate changes (its certificate was not trusted).
    pub left_at: Option<(std::time::Instant, u64)>,
    /// When a v2 fetch from it broke off or came back malformed: libgit2
    /// fetches for [`ASK_AGAIN_AFTER`] (listings stay ours).
    pub fetch_left_at: Option<std::time::Instant>,
}

/// How long a server that answered in a way not handled here is left to
/// libgit2's listing before it is asked with protocol v2 again.
pub(super) const ASK_AGAIN_AFTER: Duration = Duration::from_secs(600);

/// Whether a server left to libgit2's listing at `since` still is.
pub(super) fn still_left(since: std::time::Instant) -> bool {
    since.elapsed() < ASK_AGAIN_AFTER
}

impl Known {
    /// Whether libgit2 lists this server's refs for now.
    pub fn left_to_libgit2(&self) -> bool {
        self.left_at.is_some_and(|(since, generation)| {
            still_left(since) && generation == super::tls::generation()
        })
    }

    /// Whether a commit is fetched from it with v2 now.
    pub fn fetches_v2(&self) -> bool {
        self.speaks_v2 && !self.fetch_left_at.is_some_and(still_left)
    }
}

/// One listing's request.
pub(super) struct Request<'a> {
    /// The repository's URL (after `insteadOf`), without credentials.
    pub url: &'a str,
    /// The URL whose `http.<url>.ssl*` settings apply: the repository's
    /// (after `insteadOf`) with the user it names, which git matches
    /// them by (also after a redirect, as git reads them once).
    pub settings_url: &'a str,
    /// `Name: value` headers for this URL (`http.extraHeader`, cookies).
    pub headers: &'a [String],
    /// The username and password the repository's server gets, if any.
    pub basic: Option<(&'a str, &'a str)>,
    /// Whether to send them at once: the server asked for them before.
    pub basic_first: bool,
    /// Asked when the server wants credentials and `basic` is `None`.
    pub helpers: Option<&'a HelperAsker>,
    /// Whether the server answered with protocol v2 before: its
    /// capabilities are not asked for again.
    pub known_v2: bool,
    /// Whether the server's TLS certificate is checked (`http.sslVerify`).
    pub verify_tls: bool,
    /// The URL of the proxy to go through (SOCKS, or HTTP tunnelling
    /// HTTPS), if any.
    pub proxy: Option<&'a str>,
}

/// What a listing found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Listing {
    /// (name, commit or tag), and `<name>^{}` for what a tag peels to, as
    /// libgit2 lists them.
    pub heads: Vec<(String, Hash)>,
    /// The protocol version the server answered with (2, or 0).
    pub version: u8,
    /// Whether the server wanted credentials.
    pub authenticated: bool,
    /// Where the server redirected the repository's URL to, if it did.
    pub moved_to: Option<String>,
    /// Whether its `fetch` takes a `filter` (partial clone), when its
    /// capabilities were read this time.
    pub filters: Option<bool>,
}

/// Why there is no listing: `Unsupported` when this URL is better left to
/// libgit2 from now on (its server answers in a way not handled here, or
/// a TLS setting of ours differs from libgit2's), `Skipped` for this once
/// (a network error, credentials missing or refused: libgit2 reports it).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NoListing {
    Unsupported(String),
    Skipped(String),
}

/// List the refs under `prefixes` of the repository `req.url`. With no
/// prefixes, only what the server speaks is found out: a v2 server lists
/// nothing (v0's listing of every ref comes with its first answer).
pub(super) fn list(
    req: &Request<'_>,
    prefixes: &[String],
    cancel: &Cancel,
) -> Result<Listing, NoListing> {
    let agent = agent(req)?;
    let mut exchange = Exchange::new(&agent, req)?;
    if prefixes.is_empty() && req.known_v2 {
        return Ok(exchange.listing(Vec::new(), 2));
    }
    // A server known to speak v2 is asked at once: one round trip a poll,
    // as v0's listing (a stateless server needs no capabilities first).
    if req.known_v2 {
        if let Ok(heads) = exchange.ls_refs(prefixes, cancel) {
            return Ok(exchange.listing(heads, 2));
        }
    }
    let info_refs = |base: &str| format!("{base}/info/refs?service=git-upload-pack");
    let first_url = info_refs(&exchange.base);
    let mut answer = exchange.send(cancel, |agent| agent.get(&first_url).call())?;
    // As git: a redirect of this first request moves the repository, for
    // the requests after it; here only within the same server.
    if let Some(base) = redirected(&answer, &first_url) {
        exchange.base = base;
        exchange.moved = true;
        let moved_url = info_refs(&exchange.base);
        answer = exchange.send(cancel, |agent| agent.get(&moved_url).call())?;
    }
    let advertised = read(answer, "application/x-git-upload-pack-advertisement")?;
    let mut lines = PktLines::new(&advertised);
    let mut first = lines.next().ok_or_else(|| unsupported("an empty answer"))?;
    if first.data().is_some_and(|d| d.starts_with(b"# service=")) {
        if lines.next() != Some(Pkt::Flush) {
            return Err(unsupported("no flush after the service line"));
        }
        first = lines
            .next()
            .ok_or_else(|| unsupported("no advertisement"))?;
    }
    if first.data() != Some(b"version 2") {
        // A v0 (or v1) advertisement: every ref, already here.
        let heads = v0_refs(first, lines)?;
        return Ok(exchange.listing(heads, 0));
    }
    let (mut ls_refs, mut filters) = (false, false);
    for pkt in lines.by_ref() {
        match pkt {
            Pkt::Flush => break,
            Pkt::Data(cap) => {
                ls_refs |= cap == b"ls-refs" || cap.starts_with(b"ls-refs=");
                filters |= fetch_v2::offers_filter(cap);
                if cap.starts_with(b"object-format=") && cap != b"object-format=sha1" {
                    return Err(unsupported("a repository of another hash than SHA-1"));
                }
            }
            _ => return Err(unsupported("a malformed capability list")),
        }
    }
    if !ls_refs {
        return Err(unsupported("no ls-refs command"));
    }
    if cancel.is_cancelled() {
        return Err(NoListing::Skipped("cancelled".into()));
    }
    let heads = if prefixes.is_empty() {
        Vec::new()
    } else {
        exchange.ls_refs(prefixes, cancel)?
    };
    Ok(Listing {
        filters: Some(filters),
        ..exchange.listing(heads, 2)
    })
}

/// Send `body`, a protocol v2 command, to the upload-pack of the
/// repository `req.url`, whose server answered with v2 before; its answer
/// to `read`, as it arrives.
pub(super) fn command<T, E>(
    req: &Request<'_>,
    body: &[u8],
    cancel: &Cancel,
    read: impl FnOnce(&mut dyn std::io::Read) -> Result<T, E>,
) -> Result<Result<T, E>, NoListing> {
    let agent = agent(req)?;
    let answer = Exchange::new(&agent, req)?.command(body, cancel)?;
    let mut reader = accepted(answer, RESULT)?.into_body().into_reader();
    let result = read(&mut reader);
    if result.is_ok() {
        // What follows a whole answer (a response-end packet) is read too:
        // a body read to its end returns the connection to the pool.
        let mut rest = std::io::Read::take(&mut reader, 4 << 10);
        let _ = std::io::copy(&mut rest, &mut std::io::sink());
    }
    Ok(result)
}

/// The content type of a command's answer.
const RESULT: &str = "application/x-git-upload-pack-result";

/// The requests of one listing, with the headers they all carry.
struct Exchange<'a> {
    agent: &'a ureq::Agent,
    req: &'a Request<'a>,
    /// The repository's URL, without a trailing slash.
    base: String,
    /// Whether the server moved it there from the URL asked for.
    moved: bool,
    /// The `Authorization` header, once the server wants one.
    authorization: Option<String>,
}

type Answer = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

impl<'a> Exchange<'a> {
    fn new(agent: &'a ureq::Agent, req: &'a Request<'a>) -> Result<Self, NoListing> {
        if req.url.split("://").nth(1).is_some_and(|rest| {
            rest.split('/')
                .next()
                .is_some_and(|authority| authority.contains('@'))
        }) {
            return Err(NoListing::Unsupported("credentials in the URL".into()));
        }
        Ok(Exchange {
            agent,
            req,
            base: req.url.trim_end_matches('/').to_string(),
            moved: false,
            authorization: req
                .basic
                .filter(|_| req.basic_first)
                .map(|(user, password)| basic(user, password)),
        })
    }

    /// Make a request (`make` on a client that adds our headers), once
    /// more if a kept connection turned out closed (not after a time-out:
    /// the pass has had its time), and with credentials if the server asks
    /// for them and we have them.
    fn send(
        &mut self,
        cancel: &Cancel,
        make: impl Fn(&Headers<'_>) -> Answer,
    ) -> Result<Answer, NoListing> {
        let headers = |authorization: Option<&String>| Headers {
            agent: self.agent,
            pairs: header_pairs(self.req.headers).collect(),
            authorization: authorization.cloned(),
        };
        let mut answer = make(&headers(self.authorization.as_ref()));
        if matches!(answer, Err(ureq::Error::Io(_))) && !cancel.is_cancelled() {
            answer = make(&headers(self.authorization.as_ref()));
        }
        if answer.as_ref().is_ok_and(|a| a.status() == 401) && self.authorization.is_none() {
            let authorization = match self.req.basic {
                Some((user, password)) => Some(basic(user, password)),
                None => self
                    .req
                    .helpers
                    .and_then(|h| h.0.ask(&self.base).ok())
                    .map(|c| basic(&c.username, &c.password)),
            };
            let Some(authorization) = authorization else {
                return Err(NoListing::Skipped("the server wants credentials".into()));
            };
            self.authorization = Some(authorization);
            answer = make(&headers(self.authorization.as_ref()));
        }
        Ok(answer)
    }

    /// The `ls-refs` command's answer: the refs under `prefixes`.
    fn ls_refs(
        &mut self,
        prefixes: &[String],
        cancel: &Cancel,
    ) -> Result<Vec<(String, Hash)>, NoListing> {
        let answer = self.command(&ls_refs_request(prefixes), cancel)?;
        v2_refs(&read(answer, RESULT)?)
    }

    /// Send `body`, a protocol v2 command, to the repository's upload-pack.
    fn command(&mut self, body: &[u8], cancel: &Cancel) -> Result<Answer, NoListing> {
        let url = format!("{}/git-upload-pack", self.base);
        self.send(cancel, |agent| {
            agent
                .post(&url)
                .header("Content-Type", "application/x-git-upload-pack-request")
                .header("Accept", RESULT)
                .send(body)
        })
    }

    fn listing(&self, heads: Vec<(String, Hash)>, version: u8) -> Listing {
        Listing {
            heads,
            version,
            authenticated: self.authorization.is_some(),
            moved_to: self.moved.then(|| self.base.clone()),
            filters: None,
        }
    }
}

/// A client whose requests carry the headers of every request of a listing.
struct Headers<'a> {
    agent: &'a ureq::Agent,
    pairs: Vec<(&'a str, &'a str)>,
    authorization: Option<String>,
}

impl Headers<'_> {
    fn with<B>(&self, mut request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request = request.header("Git-Protocol", "version=2");
        for (name, value) in &self.pairs {
            request = request.header(*name, *value);
        }
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a.as_str());
        }
        request
    }

    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.with(self.agent.get(url))
    }

    fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.with(self.agent.post(url))
    }
}

/// The repository's new URL if `answer` to the request for `asked`
/// redirects it within the same server (scheme, host and port), as a
/// repository renamed on GitHub is: the credentials may go there too.
fn redirected(answer: &Answer, asked: &str) -> Option<String> {
    let answer = answer.as_ref().ok()?;
    if !matches!(answer.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = answer.headers().get("location")?.to_str().ok()?;
    let origin = origin_of(asked)?;
    let target = if location.starts_with('/') && !location.starts_with("//") {
        format!("{origin}{location}")
    } else {
        location.to_string()
    };
    if origin_of(&target)? != origin {
        return None;
    }
    target
        .strip_suffix("/info/refs?service=git-upload-pack")
        .map(str::to_string)
}

/// `scheme://host[:port]` of `url`.
fn origin_of(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    Some(&url[..end])
}

fn unsupported(what: &str) -> NoListing {
    NoListing::Unsupported(format!("{what} where git's smart HTTP answer was expected"))
}

pub(super) fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!("Basic {}", openssl::base64::encode_block(pair.as_bytes()))
}

/// `Name: value` strings as pairs; malformed ones left out (libgit2
/// refuses them when it sends them).
fn header_pairs(headers: &[String]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().filter_map(|h| http_config::split_header(h))
}

/// The body of a `200` answer of `content_type`, or why not.
fn read(answer: Answer, content_type: &str) -> Result<Vec<u8>, NoListing> {
    accepted(answer, content_type)?
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| NoListing::Skipped(e.to_string()))
}

/// A `200` answer of `content_type`, or why not.
fn accepted(
    answer: Answer,
    content_type: &str,
) -> Result<ureq::http::Response<ureq::Body>, NoListing> {
    let answer = answer.map_err(|e| match e {
        ureq::Error::Tls(_) => NoListing::Unsupported(format!("TLS: {e}")),
        e => NoListing::Skipped(e.to_string()),
    })?;
    let status = answer.status().as_u16();
    match status {
        200 => {}
        // Refused (libgit2 reports it in its words), or elsewhere.
        401 | 403 | 404 | 429 | 500..=599 => {
            return Err(NoListing::Skipped(format!("HTTP status {status}")))
        }
        _ => return Err(NoListing::Unsupported(format!("HTTP status {status}"))),
    }
    let got = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // (Parameters such as a charset aside.)
    if got.split(';').next().map(str::trim) != Some(content_type) {
        return Err(NoListing::Unsupported(format!("content type {got:?}")));
    }
    Ok(answer)
}

/// The `ls-refs` command: peeled tags and symbolic refs shown, only the
/// refs under `prefixes`.
pub(super) fn ls_refs_request(prefixes: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    pkt_line::write(&mut body, b"command=ls-refs\n");
    body.extend_from_slice(b"0001");
    pkt_line::write(&mut body, b"peel\n");
    pkt_line::write(&mut body, b"symrefs\n");
    for p in prefixes {
        pkt_line::write(&mut body, format!("ref-prefix {p}\n").as_bytes());
    }
    body.extend_from_slice(b"0000");
    body
}

/// The refs of a v0 advertisement, `first` its first line (`<hash>
/// <name>\0<capabilities>`, or `capabilities^{}` for an empty repository).
pub(super) fn v0_refs(
    first: Pkt<'_>,
    rest: PktLines<'_>,
) -> Result<Vec<(String, Hash)>, NoListing> {
    let mut heads = Vec::new();
    for pkt in std::iter::once(first).chain(rest) {
        let line = match pkt {
            Pkt::Flush => return Ok(heads),
            Pkt::Data(line) => line.split(|&b| b == 0).next().unwrap_or_default(),
            _ => return Err(unsupported("a malformed advertisement")),
        };
        let (hash, name) = text(line)?
            .split_once(' ')
            .ok_or_else(|| unsupported("a malformed ref"))?;
        if name != "capabilities^{}" {
            heads.push((name.to_string(), sha1(hash)?));
        }
    }
    Err(unsupported("an advertisement cut short"))
}

/// The refs of an `ls-refs` answer: `<hash> <name>[ symref-target:<ref>]
/// [ peeled:<hash>]` lines.
pub(super) fn v2_refs(answer: &[u8]) -> Result<Vec<(String, Hash)>, NoListing> {
    let mut heads = Vec::new();
    for pkt in PktLines::new(answer) {
        let line = match pkt {
            Pkt::Flush => return Ok(heads),
            Pkt::Data(line) => text(line)?,
            _ => return Err(unsupported("a malformed ls-refs answer")),
        };
        let mut fields = line.split(' ');
        let (Some(hash), Some(name)) = (fields.next(), fields.next()) else {
            return Err(unsupported("a malformed ref"));
        };
        heads.push((name.to_string(), sha1(hash)?));
        for attribute in fields {
            if let Some(peeled) = attribute.strip_prefix("peeled:") {
                heads.push((format!("{name}^{{}}"), sha1(peeled)?));
            }
        }
    }
    Err(unsupported("an ls-refs answer cut short"))
}

fn text(line: &[u8]) -> Result<&str, NoListing> {
    std::str::from_utf8(line).map_err(|_| unsupported("a ref name not in UTF-8"))
}

/// A SHA-1 object name in hex.
fn sha1(hex: &str) -> Result<Hash, NoListing> {
    if hex.len() != 40 {
        return Err(unsupported("a hash other than SHA-1"));
    }
    hex.parse().map_err(|_| unsupported("a malformed hash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn pkts(lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            match *l {
                b"0000" | b"0001" => out.extend_from_slice(l),
                data => pkt_line::write(&mut out, data),
            }
        }
        out
    }

    #[test]
    fn a_v2_answer_lists_refs_and_what_tags_peel_to() {
        let answer = pkts(&[
            format!("{A} HEAD symref-target:refs/heads/main\n").as_bytes(),
            format!("{A} refs/heads/main\n").as_bytes(),
            format!("{B} refs/tags/v1 peeled:{A}\n").as_bytes(),
            b"0000",
        ]);
        let heads = v2_refs(&answer).unwrap();
        let names: Vec<(&str, String)> = heads
            .iter()
            .map(|(n, h)| (n.as_str(), h.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("HEAD", A.to_string()),
                ("refs/heads/main", A.to_string()),
                ("refs/tags/v1", B.to_string()),
                ("refs/tags/v1^{}", A.to_string()),
            ]
        );
        // Cut short, or not git's: not a listing.
        assert!(v2_refs(&answer[..answer.len() - 4]).is_err());
        assert!(v2_refs(b"<html>").is_err());
    }

    #[test]
    fn a_v0_advertisement_is_read_as_it_is() {
        let adv = pkts(&[
            format!("{A} HEAD\0multi_ack symref=HEAD:refs/heads/main\n").as_bytes(),
            format!("{A} refs/heads/main\n").as_bytes(),
            format!("{B} refs/tags/v1\n").as_bytes(),
            format!("{A} refs/tags/v1^{{}}\n").as_bytes(),
            b"0000",
        ]);
        let mut lines = PktLines::new(&adv);
        let first = lines.next().unwrap();
        let heads = v0_refs(first, lines).unwrap();
        assert_eq!(heads.len(), 4);
        assert_eq!(heads[0].0, "HEAD");
        assert_eq!(heads[3].0, "refs/tags/v1^{}");
        // An empty repository advertises its capabilities only.
        let empty = pkts(&[
            format!("{} capabilities^{{}}\0multi_ack\n", "0".repeat(40)).as_bytes(),
            b"0000",
        ]);
        let mut lines = PktLines::new(&empty);
        let first = lines.next().unwrap();
        assert_eq!(v0_refs(first, lines).unwrap(), []);
    }

    fn answer(status: u16, location: &str) -> Answer {
        Ok(ureq::http::Response::builder()
            .status(status)
            .header("Location", location)
            .body(ureq::Body::builder().data(""))
            .unwrap())
    }

    #[test]
    fn a_redirect_within_the_server_moves_the_repository() {
        let asked = "https://h.example/old/site/info/refs?service=git-upload-pack";
        let moved = "https://h.example/new/site.git/info/refs?service=git-upload-pack";
        assert_eq!(
            redirected(&answer(301, moved), asked).as_deref(),
            Some("https://h.example/new/site.git")
        );
        assert_eq!(
            redirected(
                &answer(302, "/new/site/info/refs?service=git-upload-pack"),
                asked
            )
            .as_deref(),
            Some("https://h.example/new/site")
        );
        // Elsewhere (another host, port or scheme), or not the listing, or
        // not a redirect: not followed.
        for (status, location) in [
            (
                301,
                "https://other.example/site/info/refs?service=git-upload-pack",
            ),
            (
                301,
                "https://h.example:8443/site/info/refs?service=git-upload-pack",
            ),
            (
                301,
                "http://h.example/site/info/refs?service=git-upload-pack",
            ),
            (
                301,
                "//other.example/site/info/refs?service=git-upload-pack",
            ),
            (301, "https://h.example/login"),
            (200, moved),
        ] {
            assert_eq!(
                redirected(&answer(status, location), asked),
                None,
                "{location}"
            );
        }
    }

    #[test]
    fn a_server_left_to_libgit2_is_asked_again_later() {
        let now = std::time::Instant::now();
        let generation = super::super::tls::generation();
        let known = |since: Option<std::time::Instant>| Known {
            left_at: since.map(|s| (s, generation)),
            ..Known::default()
        };
        assert!(!known(None).left_to_libgit2());
        assert!(known(Some(now)).left_to_libgit2());
        // (Unless the machine booted less than that ago: no such instant.)
        if let Some(long_ago) = now.checked_sub(ASK_AGAIN_AFTER + Duration::from_secs(1)) {
            assert!(!known(Some(long_ago)).left_to_libgit2());
        }
        // A CA changed since: asked again at once.
        let before_a_change = Known {
            left_at: Some((now, generation.wrapping_sub(1))),
            ..Known::default()
        };
        assert!(!before_a_change.left_to_libgit2());
    }

    #[test]
    fn the_request_asks_for_the_refs_a_name_may_mean() {
        assert_eq!(prefixes("HEAD"), ["HEAD"]);
        assert_eq!(prefixes("refs/pull/1/head"), ["refs/pull/1/head"]);
        assert_eq!(prefixes("main"), ["refs/tags/main", "refs/heads/main"]);
        let body = ls_refs_request(&prefixes("main"));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "0014command=ls-refs\n00010009peel\n000csymrefs\n\
             001eref-prefix refs/tags/main\n001fref-prefix refs/heads/main\n0000"
        );
    }
}
