//! Work on many small items (files: a stat, a link, a write each) cut
//! into chunks, one thread per core for a large list: on a large tree the
//! system calls are the whole cost, and they go as fast on two threads as
//! the kernel lets them.

/// Fewer items than this are done on the calling thread. (Unit tests
/// take the threaded path with small trees: a debug build makes large
/// ones slowly.)
pub const PARALLEL_FROM: usize = if cfg!(test) { 200 } else { 2_000 };

/// How many threads `n` items are worth: one per core (up to 4) from
/// [`PARALLEL_FROM`] on, else one.
pub fn threads_for(n: usize) -> usize {
    match n < PARALLEL_FROM {
        true => 1,
        false => std::thread::available_parallelism().map_or(1, |c| c.get().min(4)),
    }
}

/// `f` over `items` cut into [`threads_for`] chunks, each on a thread of
/// its own when more than one; the results in order, or the first error.
pub fn in_chunks<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&[T]) -> Result<Vec<R>, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = threads_for(items.len());
    if threads < 2 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    let parts: Vec<Result<Vec<R>, E>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| s.spawn(|| f(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// `f` on each of `items`, taken one after the other by `threads` threads
/// (for work that waits rather than computes, such as downloads, where
/// any item may be the slow one); no item is taken after the first error,
/// which is returned.
pub fn queued<T: Sync, E: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(None);
    let work = || loop {
        let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        if crate::lock(&failed).is_some() {
            return;
        }
        if let Err(e) = f(item) {
            crate::lock(&failed).get_or_insert(e);
            return;
        }
    };
    match threads.min(items.len()) {
        0 | 1 => work(),
        n => std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(work);
            }
        }),
    }
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_work_is_done_once_each_and_stops_at_an_error() {
        let done = std::sync::Mutex::new(Vec::new());
        let items: Vec<u32> = (0..100).collect();
        queued(8, &items, |&i| {
            crate::lock(&done).push(i);
            Ok::<(), ()>(())
        })
        .unwrap();
        let mut done = done.into_inner().unwrap();
        done.sort();
        assert_eq!(done, items);
        // One thread: nothing after the failing item is taken.
        let taken = std::sync::atomic::AtomicUsize::new(0);
        let failed = queued(1, &items, |&i| {
            taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i == 10 {
                Err(i)
            } else {
                Ok(())
            }
        });
        assert_eq!(failed, Err(10));
        assert_eq!(taken.into_inner(), 11);
        assert_eq!(queued(4, &[] as &[u32], |_| Err(())), Ok(()));
    }
}
