//! Spreading one pure computation over many items across the machine's cores.

/// Below this many items, one thread does all the work.
pub const PARALLEL_FROM: usize = 2048;

/// `f(index, item)` for every item, in order; on several threads when there are many items.
pub fn map_indexed<T: Sync, R: Send + Default>(
    items: &[T],
    f: &(dyn Fn(usize, &T) -> R + Sync),
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < PARALLEL_FROM || threads < 2 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, t)| f(n * chunk + i, t))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (n, worker) in workers.into_iter().enumerate() {
            // A worker only panics if `f` does; its items then get the default.
            let len = items.chunks(chunk).nth(n).map_or(0, <[T]>::len);
            out.extend(
                worker
                    .join()
                    .unwrap_or_else(|_| (0..len).map(|_| R::default()).collect()),
            );
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order() {
        let items: Vec<usize> = (0..10_000).collect();
        let doubled = map_indexed(&items, &|i, n| {
            assert_eq!(i, *n);
            n * 2
        });
        assert_eq!(doubled.len(), 10_000);
        assert!(doubled.iter().enumerate().all(|(i, d)| *d == i * 2));
    }
}
