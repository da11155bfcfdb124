//! When git-sync is the first process of a container (PID 1: the image
//! has no init), a process an exec hook leaves running (`cmd &`) becomes
//! its child once the hook exits, and nobody reaps it when it ends: such
//! zombies pile up until the Pod's PID limit. So the first process becomes
//! a minimal init, as upstream's does: it runs git-sync again as its one
//! child, passes every signal on to it, reaps whatever exits, and exits as
//! that child did.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Whether this process is the first of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// The status a shell would report for a wait status.
fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        // An exit status is 0..=255.
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        128u8.saturating_add(libc::WTERMSIG(status) as u8)
    } else {
        1
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Block every signal and give each a handler (`take`), or undo that. The
/// kernel drops a signal sent to a namespace's init that has no handler
/// for it; these handlers never run, the signals staying blocked until
/// sigwaitinfo takes them.
fn take_signals(all: &libc::sigset_t, take: bool) {
    let (how, handler) = if take {
        (libc::SIG_BLOCK, ignore as *const () as libc::sighandler_t)
    } else {
        (libc::SIG_UNBLOCK, libc::SIG_DFL)
    };
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: signal(2) with a valid signal number and a handler
            // that does nothing (exec resets it in the child).
            unsafe { libc::signal(sig, handler) };
        }
    }
    // SAFETY: `all` is a valid set; no other thread exists yet.
    unsafe { libc::pthread_sigmask(how, all, std::ptr::null_mut()) };
}

/// Run this program again, with the same arguments and environment, as our
/// child, and be its init until it exits; returns its exit status. An
/// error means no child was started.
pub fn run_as_init() -> io::Result<u8> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(std::env::args_os().skip(1));
    // SAFETY: between fork and exec the child only calls sigemptyset and
    // pthread_sigmask, both async-signal-safe: it starts with no signal
    // blocked (the mask is inherited across exec).
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    // SAFETY: a zeroed sigset_t is valid storage; sigfillset fills it.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `all` is a valid sigset_t.
    unsafe { libc::sigfillset(&mut all) };
    // Every signal from now on waits for sigwaitinfo below; none is lost
    // between the spawn and the wait.
    take_signals(&all, true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            take_signals(&all, false);
            return Err(e);
        }
    };
    // Reaped below by waitpid, with every other process that ends here.
    let pid = child.id() as libc::pid_t;
    drop(child);
    loop {
        // SAFETY: `all` is a valid set; no siginfo wanted.
        let sig = unsafe { libc::sigwaitinfo(&all, std::ptr::null_mut()) };
        if sig < 0 {
            // EINTR; the only other error, EINVAL, needs a bad set. The
            // child runs: never return as if none had started.
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: plain kill(2) of our child.
            unsafe { libc::kill(pid, sig) };
            continue;
        }
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes the status into our variable.
            let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if reaped <= 0 {
                break;
            }
            if reaped == pid {
                return Ok(exit_code(status));
            }
        }
    }
}
