//! Parsers for the value syntaxes upstream git-sync accepts (Go's).

use std::time::Duration;

/// Parse a Go `time.ParseDuration` string: `300ms`, `1.5h`, `2h45m`, `0`.
/// Negative durations are refused; no flag of ours has a use for them.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("duration must not be negative".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number in {s:?}"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad number in {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {s:?} (e.g. 10s, 250ms)")),
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration {s:?} is out of range"))
}

/// Parse legacy whole or fractional seconds (`GIT_SYNC_WAIT=10`, `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} is not a valid number of seconds"))
}

/// Parse a boolean as Go's `strconv.ParseBool` does.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true or false)")),
    }
}

/// Parse a signed integer.
pub fn parse_int(s: &str) -> Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an integer"))
}

/// Parse `key:value,key:"quoted, value"` as upstream's `--git-config`.
pub fn parse_git_config(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        // key
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == ':' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_string();
        if key.is_empty() {
            if chars.peek().is_none() && out.is_empty() && s.trim().is_empty() {
                return Ok(out);
            }
            return Err(format!("missing key in {s:?} (expected key:value)"));
        }
        // value, maybe quoted
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e) => value.push(e),
                        None => return Err(format!("unfinished escape in {s:?}")),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quote in {s:?}"));
            }
            match chars.next() {
                None => {
                    out.push((key, value));
                    return Ok(out);
                }
                Some(',') => {}
                Some(c) => return Err(format!("unexpected {c:?} after quoted value in {s:?}")),
            }
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == ',' {
                    ended = false;
                    break;
                }
                value.push(c);
            }
            out.push((key, value));
            if ended {
                return Ok(out);
            }
            continue;
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn booleans_as_go_parses_them() {
        assert!(parse_bool("true").unwrap());
        assert!(parse_bool("1").unwrap());
        assert!(!parse_bool("False").unwrap());
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn git_config_pairs() {
        let v =
            parse_git_config(r#"http.proxy:http://p:3128,core.x:"a, b",safe.directory:*"#).unwrap();
        assert_eq!(
            v,
            vec![
                ("http.proxy".into(), "http://p:3128".into()),
                ("core.x".into(), "a, b".into()),
                ("safe.directory".into(), "*".into()),
            ]
        );
        assert!(parse_git_config("novalue").is_ok());
        assert!(parse_git_config(":v").is_err());
        assert!(parse_git_config(r#"k:"open"#).is_err());
        assert!(parse_git_config("").unwrap().is_empty());
    }
}
