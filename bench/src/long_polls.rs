//! Long polls held open by simulated agents: each agent waits with the ETag it holds, and the
//! moment its answer arrives is recorded (wall-clock, to compare with times the broker records).

use std::time::Duration;

use anyhow::{Result, bail};
use brokkr_bench::fleet::{Fleet, SimAgent};
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

/// When an answer arrived, and its status.
type Answer = JoinHandle<Result<(DateTime<Utc>, u16)>>;

/// Open long polls, one per agent.
pub struct LongPolls(Vec<Answer>);

impl LongPolls {
    /// Opens `?wait=60` for every `(agent, etag)` and returns once the broker's waiting gauge
    /// counts them all.
    pub async fn open<'a>(
        fleet: &Fleet,
        held: impl Iterator<Item = (&'a SimAgent, &'a String)>,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .timeout(Duration::from_secs(120))
            .build()?;
        let mut waiting = Vec::new();
        for (agent, tag) in held {
            let url = format!(
                "{}/api/v1/agents/{}/target-state?wait=60",
                fleet.url, agent.id
            );
            let request = client
                .get(url)
                .bearer_auth(&agent.pak)
                .header("If-None-Match", tag);
            waiting.push(tokio::spawn(async move {
                let response = request.send().await?;
                let status = response.status().as_u16();
                response.bytes().await?;
                anyhow::Ok((Utc::now(), status))
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let now_waiting = fleet.metric("brokkr_target_state_waiting").await?;
            if now_waiting >= waiting.len() as f64 {
                break;
            }
            if std::time::Instant::now() > deadline {
                let answered = waiting.iter().filter(|w| w.is_finished()).count();
                let total = waiting.len();
                let first = match waiting.into_iter().find(|w| w.is_finished()) {
                    Some(handle) => format!("{:?}", handle.await?),
                    None => "none".into(),
                };
                bail!(
                    "not every agent got to wait: {now_waiting} of {total} waiting, \
                     {answered} answered (the first: {first})"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self(waiting))
    }

    /// When each answer arrived; every answer must be 200.
    pub async fn answers(self) -> Result<Vec<DateTime<Utc>>> {
        let mut answers = Vec::with_capacity(self.0.len());
        for handle in self.0 {
            let (at, status) = handle.await??;
            if status != 200 {
                bail!("a long poll answered {status}");
            }
            answers.push(at);
        }
        Ok(answers)
    }
}

/// How long after `since` each answer arrived.
pub fn latencies(answers: &[DateTime<Utc>], since: DateTime<Utc>) -> Vec<Duration> {
    answers
        .iter()
        .map(|at| (*at - since).to_std().unwrap_or_default())
        .collect()
}
