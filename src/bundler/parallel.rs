//! One small worker pool for the bundler: maps a function over items on as
//! many threads as there are CPUs (never more threads than items), keeping
//! the items' order in the results. Used to build components and to write
//! and remove component directories; [`try_map`] for steps that wait on
//! something outside (helm pulling or rendering charts).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `items.iter().map(f).collect()`, spread over the CPUs.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bundler workers do not panic"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// [`map`] of a fallible `f` that starts no further item once one has
/// failed: after a deadline or a signal the rest would fail the same way,
/// each after its own wait. The error is the first in the items' order
/// (items start in order, so every skipped item comes after a failed one).
pub fn try_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let failed = AtomicBool::new(false);
    let done = map(items, |item| {
        if failed.load(Ordering::SeqCst) {
            return None;
        }
        let got = f(item);
        if got.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        Some(got)
    });
    let mut out = Vec::with_capacity(done.len());
    for got in done.into_iter().flatten() {
        out.push(got?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            super::map(&items, |i| i * 2),
            (0..100).map(|i| i * 2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn try_map_starts_nothing_after_a_failure() {
        let items: Vec<u32> = (0..64).collect();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let got = super::try_map(&items, |i| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if *i == 3 {
                Err(format!("item {i}"))
            } else {
                Ok(*i)
            }
        });
        assert_eq!(got, Err("item 3".to_string()));
        // Items 0..=3, plus at most one under way per other worker.
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(ran.into_inner() <= 4 + workers, "started after the failure");
        assert_eq!(
            super::try_map(&items[..5], |i| Ok::<_, ()>(i * 2)),
            Ok(vec![0, 2, 4, 6, 8])
        );
    }
}
