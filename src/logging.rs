//! Log setup: `tracing` to stderr, JSON lines or text, `-v` levels.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;

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
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber already installed (tests) is fine.
    let _ = result;
}
