//! `--askpass-url`: a GET whose answer holds `username=` and `password=`
//! lines, as upstream's askpass helper protocol.

use crate::git::Credentials;
use crate::redact::redact;

pub fn query(agent: &ureq::Agent, url: &str) -> Result<Credentials, String> {
    let shown = redact(url);
    let proxy = super::proxy_for(url).map_err(|e| format!("askpass {shown}: {e}"))?;
    let mut response = agent
        .get(url)
        .config()
        .proxy(proxy)
        .build()
        .call()
        .map_err(|e| format!("askpass {shown}: {}", redact(&e.to_string())))?;
    if response.status() != 200 {
        return Err(format!(
            "askpass {shown} answered {}",
            response.status().as_u16()
        ));
    }
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("askpass {shown}: {e}"))?;
    let mut username = None;
    let mut password = None;
    for line in body.lines() {
        if let Some(u) = line.strip_prefix("username=") {
            username = Some(u.trim_end().to_string());
        } else if let Some(p) = line.strip_prefix("password=") {
            password = Some(p.trim_end().to_string());
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(Credentials { username, password }),
        _ => Err(format!(
            "askpass {shown}: the answer lacks username= or password="
        )),
    }
}
