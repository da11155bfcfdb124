//! Stopping an operation under way: the flag it checks, and the sections
//! of it that a stop lets finish.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A flag that asks a running git operation to stop, raised by hand or,
/// with a deadline, by the clock. Checked by libgit2's progress callbacks,
/// so it also ends a transfer in flight.
///
/// A read from a server that sends nothing checks no flag. Whoever waits
/// for such an operation may leave it behind ([`Cancel::leave_behind`])
/// rather than wait for the read's timeout, except while it is in a
/// section that changes what readers see ([`Cancel::hold`]).
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// The operation's own end: what waited until then (a request to a
    /// hung server) sees it is over without waiting for whoever raises
    /// the flag, which may come a moment later on a busy machine.
    deadline: Option<Instant>,
    /// How many held sections are under way, or [`LEFT`] once the
    /// operation was left behind: no section starts after that.
    holds: Arc<AtomicUsize>,
}

/// The count of held sections of an operation left behind.
const LEFT: usize = usize::MAX;

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    /// Cancelled by hand, or once `deadline` has passed.
    pub fn until(deadline: Instant) -> Self {
        Cancel {
            deadline: Some(deadline),
            ..Self::default()
        }
    }
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Enter a section that must not be left half done (it changes what
    /// readers see), until the [`Hold`] is dropped. `None` once the
    /// operation was left behind: it must stop instead.
    #[must_use]
    pub fn hold(&self) -> Option<Hold> {
        self.holds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                // (Lazily: `n + 1` overflows when left behind.)
                (n != LEFT).then(|| n + 1)
            })
            .ok()
            .map(|_| Hold {
                holds: self.holds.clone(),
            })
    }

    /// Give up waiting for the operation, unless it is in a held section:
    /// `true` if given up, after which it enters no held section (it may
    /// run on until the process ends, changing nothing readers see).
    pub fn leave_behind(&self) -> bool {
        self.holds
            .compare_exchange(0, LEFT, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            || self.holds.load(Ordering::SeqCst) == LEFT
    }
}

/// A held section of an operation, until dropped (see [`Cancel::hold`]).
#[derive(Debug)]
pub struct Hold {
    holds: Arc<AtomicUsize>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_left_behind_only_outside_its_held_sections() {
        let c = Cancel::new();
        let outer = c.hold().expect("not left behind yet");
        let inner = c.clone().hold().expect("sections nest");
        assert!(!c.leave_behind());
        drop(inner);
        assert!(!c.leave_behind(), "one section is still under way");
        drop(outer);
        assert!(c.leave_behind());
        assert!(c.leave_behind(), "left behind stays so");
        assert!(c.hold().is_none(), "no section starts once left behind");
    }

    #[test]
    fn a_deadline_cancels_by_itself() {
        let c = Cancel::until(Instant::now());
        assert!(c.is_cancelled());
        let c = Cancel::until(Instant::now() + std::time::Duration::from_secs(60));
        assert!(!c.is_cancelled());
        c.clone().cancel();
        assert!(c.is_cancelled(), "clones share the flag");
    }
}
