//! The `git-sync` binary: parse the configuration, run the loop.

use std::process::ExitCode;

use gitsync::config::{self, Action};
use gitsync::hooks::credential_helper;

fn main() -> ExitCode {
    // Run by a git in an exec hook as its credential helper.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(credential_helper::FLAG) {
        return ExitCode::from(credential_helper::run_helper(args.next().as_deref()));
    }
    gitsync::memory::tune_allocator();
    if gitsync::pid1::is_pid1() {
        match gitsync::pid1::run_as_init() {
            Ok(code) => return ExitCode::from(code),
            // Then run here, without an init: hooks' leftovers stay zombies.
            Err(e) => eprintln!("git-sync: cannot run as the container's init: {e}"),
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::from_env_and_args(&args) {
        Ok(Action::Run(cfg)) => *cfg,
        Ok(Action::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // The user-facing answer to a bad command line: one line.
            eprintln!("git-sync: error: {e}");
            return ExitCode::from(1);
        }
    };
    gitsync::logging::init(cfg.verbosity, cfg.log_format);
    gitsync::user::set_umask(cfg.checkout.group_write);
    if cfg.checkout.add_user {
        gitsync::user::add_user(&cfg.root);
    }
    gitsync::daemon::prepare(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(gitsync::daemon::run(cfg));
    gitsync::hooks::stop_running();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
