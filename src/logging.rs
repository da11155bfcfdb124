//! Log setup: `tracing` to stderr, JSON lines or text, `-v` levels.
//!
//! JSON lines have upstream's shape (go-logr's funcr, as git-sync v4 sets
//! it up), so that log pipelines and alerts written for upstream parse them:
//!
//! ```text
//! {"logger":"","ts":"2026-01-02 03:04:05.000006","caller":{"file":"daemon/mod.rs","line":12},"level":0,"msg":"updated successfully","ref":"main",...}
//! {"logger":"","ts":"...","caller":{...},"msg":"error syncing repo, will retry","error":"...","failCount":1}
//! ```
//!
//! `level` is the verbosity a line needs (0, or 1 for `-v` detail); error
//! lines have none and carry `error` right after `msg`, as funcr writes them.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Install the global subscriber. Verbosity 0 logs updates and errors,
/// 1 and more add debug detail. Never trace: at that level the HTTP client
/// logs request paths and queries (webhook URLs carry keys there).
pub fn init(verbosity: u8, format: Option<LogFormat>) {
    let level = match verbosity {
        0 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let tty = std::io::stderr().is_terminal();
    let format = format.unwrap_or(if tty {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour only for a person at a terminal, not in files or journald.
        .with_ansi(tty && std::env::var_os("NO_COLOR").is_none());
    // The file watcher's own notes (a watch on a removed directory that
    // cannot be removed) say nothing to an operator.
    let quiet = Targets::new()
        .with_default(level)
        .with_target("notify", LevelFilter::ERROR);
    let result = match format {
        LogFormat::Json => builder
            .event_format(UpstreamJson)
            .finish()
            .with(quiet)
            .try_init(),
        LogFormat::Text => builder.finish().with(quiet).try_init(),
    };
    // A subscriber already installed (tests) is fine.
    let _ = result;
}

/// The JSON line format of upstream git-sync (see the module's doc).
struct UpstreamJson;

impl<S, N> FormatEvent<S, N> for UpstreamJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(
            writer,
            "{}",
            json_line(event.metadata(), SystemTime::now(), fields)
        )
    }
}

/// An event's fields as JSON values, in the order they were given.
#[derive(Default)]
struct Fields {
    message: String,
    error: Option<serde_json::Value>,
    rest: Vec<(&'static str, serde_json::Value)>,
    /// Where a record of the `log` crate (a dependency's) came from: its
    /// target, file and line arrive as fields.
    log_target: Option<String>,
    log_file: Option<String>,
    log_line: Option<u64>,
    /// The hook a line is about, if any: the logger's name.
    hook: Option<String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        let text = |value: serde_json::Value| match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        match field.name() {
            "message" => self.message = text(value),
            "error" => self.error = Some(value),
            "log.target" => self.log_target = Some(text(value)),
            "log.file" => self.log_file = Some(text(value)),
            "log.line" => self.log_line = value.as_u64(),
            "log.module_path" => {}
            // As upstream names its hooks' loggers (WithName("webhook")).
            "hook" => {
                self.hook = value.as_str().map(str::to_string);
                self.rest.push(("hook", value));
            }
            name => self.rest.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

/// One line: `logger`, `ts`, `caller`, `level` (not on errors), `msg`,
/// `error` (errors only), then the event's own fields.
fn json_line(meta: &tracing::Metadata<'_>, now: SystemTime, fields: Fields) -> String {
    let Fields {
        message,
        error,
        rest,
        log_target,
        log_file,
        log_line,
        hook,
    } = fields;
    // Ours have no logger name, as upstream's main loop, but a hook's
    // lines (`exechook`, `webhook`); a dependency's record is named after
    // its target (`ureq::run`).
    let logger = serde_json::Value::from(log_target.or(hook).unwrap_or_default());
    let file = short_file(log_file.as_deref().or(meta.file()).unwrap_or_default());
    let line_number = log_line.or(meta.line().map(u64::from)).unwrap_or(0);
    let caller = serde_json::json!({ "file": file, "line": line_number });
    let mut line = format!(
        "{{\"logger\":{logger},\"ts\":\"{}\",\"caller\":{caller}",
        utc(now)
    );
    let is_error = *meta.level() == Level::ERROR;
    if !is_error {
        let verbosity = match *meta.level() {
            Level::INFO | Level::WARN => 0,
            Level::DEBUG => 1,
            _ => 2,
        };
        let _ = write!(line, ",\"level\":{verbosity}");
    }
    let _ = write!(line, ",\"msg\":{}", serde_json::Value::from(message));
    // An error line always has its error (null without one), as funcr's.
    if let Some(error) = error.or(is_error.then_some(serde_json::Value::Null)) {
        let _ = write!(line, ",\"error\":{error}");
    }
    for (name, value) in &rest {
        let _ = write!(line, ",{}:{value}", serde_json::Value::from(*name));
    }
    line.push('}');
    line
}

/// `2006-01-02 15:04:05.000000` in UTC, funcr's default timestamp format.
/// A source file as upstream's lines name theirs, by its name; a `mod.rs`
/// (there are many) with its directory's: `daemon/mod.rs`.
fn short_file(path: &str) -> &str {
    let mut slashes = path.rmatch_indices('/').map(|(i, _)| i + 1);
    let name_at = slashes.next().unwrap_or(0);
    if &path[name_at..] != "mod.rs" {
        return &path[name_at..];
    }
    &path[slashes.next().unwrap_or(0)..]
}

fn utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_dependencys_log_record_says_where_it_came_from() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(UpstreamJson)
                .with_writer(move || Sink(sink.clone())),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                log.target = "ureq::run",
                log.module_path = "ureq::run",
                log.file = "/home/u/.cargo/registry/src/ureq-3/src/run.rs",
                log.line = 153u64,
                "POST somewhere"
            );
            tracing::warn!(hash = "abc", "ours");
            tracing::info!(hook = "webhook", hash = "abc", "hook succeeded");
            tracing::info!(log.file = "src/daemon/mod.rs", log.line = 7u64, "a mod.rs");
            tracing::info!(log.file = "mod.rs", log.line = 8u64, "a bare mod.rs");
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["logger"], "ureq::run", "{text}");
        assert_eq!(v[0]["caller"]["file"], "run.rs", "{text}");
        assert_eq!(v[0]["caller"]["line"], 153, "{text}");
        assert!(!text.contains("log.") && !text.contains(".cargo"), "{text}");
        assert_eq!(v[1]["logger"], "", "{text}");
        assert_eq!(v[1]["caller"]["file"], "logging.rs", "{text}");
        assert_eq!(v[1]["level"], 0, "{text}");
        assert_eq!(v[1]["hash"], "abc", "{text}");
        assert_eq!(v[2]["logger"], "webhook", "{text}");
        assert_eq!(v[2]["hook"], "webhook", "{text}");
        // Of the many mod.rs, the one in daemon/.
        assert_eq!(v[3]["caller"]["file"], "daemon/mod.rs", "{text}");
        assert_eq!(v[4]["caller"]["file"], "mod.rs", "{text}");
    }

    /// A writer into a shared buffer.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        for (secs, want) in [
            (0, "1970-01-01 00:00:00.000000"),
            (951_782_400, "2000-02-29 00:00:00.000000"),
            (1_795_710_417, "2026-11-26 16:26:57.000000"),
            (4_107_542_399, "2100-02-28 23:59:59.000000"),
        ] {
            assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
        let t = UNIX_EPOCH + Duration::from_micros(1_500_000);
        assert_eq!(utc(t), "1970-01-01 00:00:01.500000");
    }
}
