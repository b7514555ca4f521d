//! Long polls held open by simulated agents: each agent waits with the ETag it holds, and the
//! moment its answer arrives is recorded (wall-clock, to compare with times the broker records).
//! The polls are bare HTTP/1.1 exchanges ([`crate::bare_http`]), so the load generator's CPU
//! per answer stays small beside the broker's.

use std::time::Duration;

use std::sync::Arc;

use anyhow::{Result, bail};
use brokkr_bench::fleet::{self, Fleet, SimAgent, config_map};

use crate::bare_http::{self, Answered};
use brokkr_bench::load;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Long polls being connected and sent at once.
const CONNECTING_AT_ONCE: usize = 256;

/// Longest a held long poll may take to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// A held long poll's answer, once it comes.
type Answer = JoinHandle<Result<Answered>>;

/// When each answer arrived; the connections stay open until this is dropped (closing 10,000
/// of them while others are still answered would add work to the broker that agents, which
/// keep theirs, do not cause).
pub struct Answers {
    pub times: Vec<DateTime<Utc>>,
    _open: Vec<tokio::net::TcpStream>,
}

/// Open long polls, one per agent.
pub struct LongPolls(Vec<Answer>);

/// What the polls that already finished came to: answers by status, failures by message.
async fn outcomes(polls: Vec<Answer>) -> String {
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for poll in polls.into_iter().filter(|p| p.is_finished()) {
        let outcome = match poll.await {
            Ok(Ok(answered)) => format!("answered {}", answered.status),
            Ok(Err(e)) => format!("failed: {e:#}"),
            Err(e) => format!("panicked: {e}"),
        };
        *tally.entry(outcome).or_default() += 1;
    }
    let finished: Vec<String> = tally.iter().map(|(o, n)| format!("{n} {o}")).collect();
    format!("finished: {}", finished.join(", "))
}

impl LongPolls {
    /// Opens `?wait=60` for every `(agent, etag)` and returns once the broker's waiting gauge
    /// counts them all.
    pub async fn open<'a>(
        fleet: &Fleet,
        held: impl Iterator<Item = (&'a SimAgent, &'a String)>,
    ) -> Result<Self> {
        let addr = bare_http::address_of(&fleet.url)?;
        let host = fleet.url.trim_start_matches("http://").to_string();
        let mut waiting = Vec::new();
        let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
        for (agent, tag) in held {
            let path = format!("/api/v1/agents/{}/target-state?wait=60", agent.id);
            let bearer = format!("Bearer {}", agent.pak);
            let mut headers = vec![("Authorization", bearer.as_str()), ("If-None-Match", tag)];
            headers.extend(
                fleet
                    .accept_encoding
                    .map(|coding| ("Accept-Encoding", coding)),
            );
            let request = bare_http::get(&host, &path, &headers);
            let connecting = connecting.clone();
            waiting.push(tokio::spawn(async move {
                let answered = bare_http::exchange(addr, &request, &connecting);
                tokio::time::timeout(ANSWER_WITHIN, answered).await?
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let now_waiting = fleet.metric("brokkr_target_state_waiting").await?;
            if now_waiting >= waiting.len() as f64 {
                break;
            }
            if std::time::Instant::now() > deadline {
                let total = waiting.len();
                let outcomes = outcomes(waiting).await;
                bail!("not every agent got to wait: {now_waiting} of {total} waiting; {outcomes}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self(waiting))
    }

    /// When each answer arrived; every answer must be 200.
    pub async fn answers(self) -> Result<Answers> {
        let mut times = Vec::with_capacity(self.0.len());
        let mut open = Vec::with_capacity(self.0.len());
        for handle in self.0 {
            let answered = handle.await??;
            if answered.status != 200 {
                bail!("a long poll answered {}", answered.status);
            }
            times.push(answered.at);
            open.push(answered.connection);
        }
        Ok(Answers { times, _open: open })
    }
}

/// How long after `since` each answer arrived.
pub fn latencies(answers: &[DateTime<Utc>], since: DateTime<Utc>) -> Vec<Duration> {
    answers
        .iter()
        .map(|at| (*at - since).to_std().unwrap_or_default())
        .collect()
}

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Every agent of `agents` long-polls `polled` with its current ETag; one object is published
/// to `stack` through `written` (the same broker, or another replica); the time from the write
/// to each answer, and the CPU the polled broker and this process used per answer meanwhile.
pub async fn propagation(
    written: &Fleet,
    polled: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    stack: Uuid,
) -> Result<String> {
    let polls = LongPolls::current(polled, agents).await?;
    polls
        .publish_and_time(written, polled, generator, stack)
        .await
}

impl LongPolls {
    /// Long polls of every agent of `agents` on `polled`, each with the ETag it has now.
    pub async fn current(polled: &Fleet, agents: &Arc<Vec<SimAgent>>) -> Result<Self> {
        let tags = crate::etags(polled, agents, 64).await?;
        Self::open(polled, agents.iter().zip(tags.iter())).await
    }

    /// Publishes one object to `stack` through `written`, then waits for every answer.
    pub async fn publish_and_time(
        self,
        written: &Fleet,
        polled: &Fleet,
        generator: &str,
        stack: Uuid,
    ) -> Result<String> {
        profiler_control("enable");
        let cpu = (polled.cpu_seconds(), fleet::cpu_seconds_of("self"));
        let started = Utc::now();
        // Each run publishes an object of another size, so no two runs publish the same content.
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        written
            .publish(generator, stack, &config_map("small", 300 + 100 * run))
            .await?;
        let answers = self.answers().await?;
        profiler_control("disable");
        let per_answer = |seconds: f64| seconds * 1e6 / answers.times.len().max(1) as f64;
        let broker = per_answer(polled.cpu_seconds() - cpu.0);
        let load_generator = per_answer(fleet::cpu_seconds_of("self") - cpu.1);
        let mut latencies = latencies(&answers.times, started);
        Ok(format!(
            "{}; CPU per answer: broker {broker:.0} µs, load generator {load_generator:.0} µs",
            load::percentiles(&mut latencies)
        ))
    }
}

/// With `FLEET_BENCH_PERF_CTL` naming the control FIFO of a `perf record --control
/// fifo:<path> -D -1` (started disabled), sends it `command`: the fan-out alone is recorded.
fn profiler_control(command: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("FLEET_BENCH_PERF_CTL") else {
        return;
    };
    let sent = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut fifo| fifo.write_all(format!("{command}\n").as_bytes()));
    if let Err(e) = sent {
        eprintln!("cannot tell the profiler to {command}: {e}");
    }
}
