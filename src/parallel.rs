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
