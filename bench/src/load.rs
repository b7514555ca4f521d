//! Load generation: workers issuing requests for a fixed time, and latency percentiles.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

/// Throughput and latency of one run.
#[derive(Debug)]
pub struct Summary {
    pub requests: usize,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Summary {
    pub fn describe(mut self) -> String {
        let rate = self.requests as f64 / self.elapsed.as_secs_f64();
        let mib = self.bytes as f64 / self.elapsed.as_secs_f64() / (1024.0 * 1024.0);
        let throughput = if self.bytes > 0 {
            format!(", {mib:.0} MiB/s")
        } else {
            String::new()
        };
        format!(
            "{rate:.0} req/s{throughput}; latency {}",
            percentiles(&mut self.latencies)
        )
    }
}

/// `p50 … p99 … max` of `samples`.
pub fn percentiles(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "min {:.2} ms, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(at(0.0)),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0)),
        samples.len()
    )
}

/// Runs `concurrency` workers for `duration`; request `i` is `make(i)`, returning bytes read.
pub async fn run_load<F, Fut>(concurrency: usize, duration: Duration, make: F) -> Result<Summary>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64>> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let (mut latencies, mut bytes) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    bytes += make(i).await?;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok((latencies, bytes))
            })
        })
        .collect();
    let mut summary = Summary {
        requests: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (latencies, bytes) = worker.await??;
        summary.requests += latencies.len();
        summary.bytes += bytes;
        summary.latencies.extend(latencies);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Calls `make(i)` once for every `i < count`, `concurrency` at a time; results in order.
pub async fn each<T, F, Fut>(count: usize, concurrency: usize, make: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send,
{
    use futures::StreamExt;
    let make = Arc::new(make);
    let results: Vec<Result<T>> = futures::stream::iter(0..count)
        .map(|i| {
            let make = make.clone();
            async move { make(i).await }
        })
        .buffered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}
