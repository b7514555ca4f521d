//! Following a rollout with the broker's long poll until it is decided or time runs out,
//! progress on stderr, and the exit code that says how it ended.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use brokkr_client::{Client, RolloutWatch};
use brokkr_types::rollouts::{Rollout, RolloutState};
use uuid::Uuid;

use crate::show;

/// Exit code: at least one targeted agent failed to apply.
pub const EXIT_FAILED: u8 = 3;
/// Exit code: still progressing when the timeout passed.
pub const EXIT_TIMED_OUT: u8 = 4;
/// The longest single long poll.
const LONGEST_POLL: Duration = Duration::from_secs(30);

/// Whose rollout to follow.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// A stack's newest deployment object.
    Stack(Uuid),
    /// One deployment object.
    Object(Uuid),
}

/// How following ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Converged,
    Failed,
    /// Not waited for, or not decided yet.
    Progressing,
    TimedOut,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Failed => ExitCode::from(EXIT_FAILED),
            Self::TimedOut => ExitCode::from(EXIT_TIMED_OUT),
            Self::Converged | Self::Progressing => ExitCode::SUCCESS,
        }
    }
}

async fn look(
    client: &Client,
    subject: Subject,
    seen: Option<&str>,
    wait: Duration,
) -> Result<RolloutWatch> {
    Ok(match subject {
        Subject::Stack(id) => client.watch_stack_rollout(id, seen, wait).await?,
        Subject::Object(id) => {
            client
                .watch_deployment_object_rollout(id, seen, wait)
                .await?
        }
    })
}

/// The rollout now; with `timeout`, followed until it converges, fails or the time passes.
pub async fn rollout(
    client: &Client,
    subject: Subject,
    timeout: Option<Duration>,
) -> Result<(Rollout, Outcome)> {
    let (mut rollout, mut etag) = match look(client, subject, None, Duration::ZERO).await? {
        RolloutWatch::Changed { rollout, etag } => (*rollout, etag),
        RolloutWatch::Unchanged => bail!("the broker answered no rollout"),
    };
    let Some(timeout) = timeout else {
        return Ok((rollout, Outcome::Progressing));
    };
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while rollout.state == RolloutState::Progressing {
        let progress = show::progress(&rollout);
        if progress != last {
            eprintln!("{progress}");
            last = progress;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((rollout, Outcome::TimedOut));
        }
        let hold = left.min(LONGEST_POLL).max(Duration::from_secs(1));
        if let RolloutWatch::Changed {
            rollout: next,
            etag: tag,
        } = look(client, subject, Some(&etag), hold).await?
        {
            (rollout, etag) = (*next, tag);
        }
    }
    let outcome = match rollout.state {
        RolloutState::Failed => Outcome::Failed,
        _ => Outcome::Converged,
    };
    Ok((rollout, outcome))
}

/// Says on stderr how a followed rollout ended badly.
pub fn report(rollout: &Rollout, outcome: Outcome, timeout: Duration) {
    match outcome {
        Outcome::TimedOut => eprintln!(
            "error: the rollout was still progressing after {} s ({})",
            timeout.as_secs(),
            show::progress(rollout)
        ),
        Outcome::Failed => {
            for failure in &rollout.failures {
                eprintln!(
                    "error: agent {} failed: {}",
                    failure.agent_id,
                    failure.reason.as_deref().unwrap_or("no reason given")
                );
            }
        }
        Outcome::Converged | Outcome::Progressing => {}
    }
}

/// A duration on the command line: seconds (`90`), or with a unit (`90s`, `5m`, `1h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90, 90s, 5m or 1h"))?;
    let seconds = match unit {
        "s" => amount,
        "m" => amount.saturating_mul(60),
        "h" => amount.saturating_mul(3600),
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
