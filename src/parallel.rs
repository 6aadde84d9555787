//! Independent per-workload work spread over the cores: compiling and
//! rendering a large blueprint.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// `f(i)` for every `i` in `0..n`, in index order.
///
/// Runs on up to one thread per core; each takes the next index as it
/// finishes one, so a mix of light and heavy items keeps every core busy.
/// With fewer than `min_per_thread` items per thread, starting a thread
/// costs more than it saves, and fewer threads are used.
///
/// An item is `None` only if `f` panicked on it (a bug): the caller reports
/// that item instead of taking the process down, and every other item is
/// still there, on one thread or many.
pub fn map<T: Send>(
    n: usize,
    min_per_thread: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<Option<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n / min_per_thread.max(1))
        .max(1);
    // `f` only reads shared data, so a panic leaves nothing half-updated.
    let f = |i| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).ok();
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Vec<(usize, Option<T>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return out;
                        }
                        out.push((i, f(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, item) in done {
        if let Some(slot) = results.get_mut(i) {
            *slot = item;
        }
    }
    results
}

/// Values computed once per key and shared between threads (a kind's
/// compiled schema, where a template went past its output cap).
pub struct OnceMap<K, V>(Mutex<HashMap<K, Arc<OnceLock<V>>>>);

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        OnceMap(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V> OnceMap<K, V> {
    /// The cell of `key`'s value. The map is locked only to find the cell;
    /// the cell computes once (`get_or_init`), even when several threads ask
    /// at the same time, without blocking threads that ask for other keys.
    pub fn cell(&self, key: K) -> Arc<OnceLock<V>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_index_order() {
        for (n, min) in [(0, 1), (1, 1), (5, 100), (1000, 1), (1000, 16)] {
            let got: Vec<Option<usize>> = map(n, min, |i| i * 2);
            let want: Vec<Option<usize>> = (0..n).map(|i| Some(i * 2)).collect();
            assert_eq!(got, want, "n = {n}, min_per_thread = {min}");
        }
    }

    #[test]
    fn a_panicking_item_is_none_and_the_rest_complete() {
        // One thread (on the caller) and several behave the same.
        for min_per_thread in [1000, 1] {
            let got = map(200, min_per_thread, |i| {
                assert!(i != 7, "item 7 fails on purpose");
                i
            });
            assert_eq!(got.len(), 200);
            for (i, item) in got.iter().enumerate() {
                let want = (i != 7).then_some(i);
                assert_eq!(*item, want, "item {i}, min_per_thread = {min_per_thread}");
            }
        }
    }
}
