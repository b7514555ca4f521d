//! One delivery attempt: the request (the event's envelope, or what the subscription's notifier
//! plugin makes of it), signed as Standard Webhooks specifies, sent once, and the answer
//! classified: 2xx delivered; transport errors, 408, 425, 429 and 5xx retried (honouring
//! `Retry-After`); redirects, other 4xx and refused addresses dead at once.

use std::time::{Duration, Instant};

use brokkr_policy::plugin::Event;
use chrono::Utc;

use crate::app::App;
use crate::app::deliveries::{Attempt, Claimed, Ending, Target};
use crate::app::outbox::envelope;
use crate::db::outbox::StoredEvent;
use crate::domain::address_policy::AddressPolicy;
use crate::domain::signature::signature_header;

/// Most bytes of a receiver's answer that are read (the rest is discarded).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The request to send.
struct Outgoing {
    body: String,
    content_type: String,
    headers: Vec<(String, String)>,
}

/// What the request carries: the envelope, or the notifier's answer (`None`: dropped).
async fn outgoing(
    app: &App,
    target: &Target,
    event: &StoredEvent,
) -> Result<Option<Outgoing>, String> {
    let wire = envelope(event.id, &event.event_type, event.occurred_at, &event.data);
    let envelope_text = wire.to_string();
    let notifier = target.notifier.clone()?;
    let Some(notifier) = notifier else {
        return Ok(Some(Outgoing {
            body: envelope_text,
            content_type: "application/json".into(),
            headers: Vec::new(),
        }));
    };
    let input = Event {
        id: event.id.to_string(),
        event_type: event.event_type.clone(),
        timestamp: wire["timestamp"].as_str().unwrap_or_default().to_string(),
        data: event.data.clone(),
        envelope: envelope_text,
    };
    let made = app
        .policies
        .notify(notifier.plugin, input, notifier.config)
        .await
        .map_err(|e| format!("the notifier plugin failed: {e}"))?;
    Ok(made.map(|o| Outgoing {
        body: o.body,
        content_type: o.content_type,
        headers: o.headers.into_iter().map(|h| (h.name, h.value)).collect(),
    }))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// How an answer ends the attempt.
fn classify(status: u16, after: Option<Duration>) -> Ending {
    match status {
        200..=299 => Ending::Delivered,
        408 | 425 | 429 | 500..=599 => Ending::Retry {
            error: format!("the receiver answered {status}"),
            after,
        },
        300..=399 => Ending::Dead {
            error: format!("the receiver answered {status}; redirects are not followed"),
        },
        _ => Ending::Dead {
            error: format!("the receiver answered {status}"),
        },
    }
}

/// A transport error: refused addresses are dead, the rest worth retrying. The URL is left out
/// of the reason (its query string is a secret).
fn transport(err: reqwest::Error, timeout: Duration) -> Ending {
    let timed_out = err.is_timeout();
    let err = err.without_url();
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    if let Some(refused) = chain.iter().find(|c| c.starts_with("refused:")) {
        return Ending::Dead {
            error: refused.clone(),
        };
    }
    let error = if timed_out {
        format!("no answer within {} s", timeout.as_secs())
    } else {
        chain.join(": ")
    };
    Ending::Retry { error, after: None }
}

/// Reads (and discards) at most [`MAX_ANSWER_BYTES`] of the answer, so the connection can be
/// reused.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= MAX_ANSWER_BYTES {
            break;
        }
    }
}

/// Makes one attempt of a claimed delivery.
pub async fn attempt(
    app: &App,
    client: &reqwest::Client,
    policy: &AddressPolicy,
    claimed: &Claimed,
) -> Attempt {
    let started = Instant::now();
    let (status_code, ending) = run(app, client, policy, claimed).await;
    Attempt {
        delivery: claimed.delivery.id,
        attempt: claimed.delivery.attempts,
        max_attempts: match &claimed.target {
            Ok(Some(target)) => target.max_attempts,
            // Not this broker's fault to give up on: let a replica that can open it try.
            Err(_) => 50,
            Ok(None) => 1,
        },
        status_code,
        latency: started.elapsed(),
        ending,
    }
}

async fn run(
    app: &App,
    client: &reqwest::Client,
    policy: &AddressPolicy,
    claimed: &Claimed,
) -> (Option<u16>, Ending) {
    let dead = |error: &str| {
        (
            None,
            Ending::Dead {
                error: error.into(),
            },
        )
    };
    let target = match &claimed.target {
        Ok(Some(target)) => target,
        Ok(None) => return dead("the subscription was deleted or disabled"),
        Err(error) => {
            let after = Some(Duration::from_secs(5));
            let error = error.clone();
            return (None, Ending::Retry { error, after });
        }
    };
    let Some(event) = &claimed.event else {
        return dead("the event is no longer stored");
    };
    let outgoing = match outgoing(app, target, event).await {
        Ok(Some(outgoing)) => outgoing,
        Ok(None) => return (None, Ending::Dropped),
        Err(error) => return dead(&error),
    };
    let url = match reqwest::Url::parse(&target.url) {
        Ok(url) => url,
        Err(e) => return dead(&format!("the URL does not parse: {e}")),
    };
    if let Err(refused) = super::client::check_literal(policy, &url) {
        return dead(&refused);
    }
    let id = event.id.to_string();
    let timestamp = Utc::now().timestamp();
    let secrets = target.secrets_at(Utc::now());
    let signature = signature_header(&secrets, &id, timestamp, outgoing.body.as_bytes());
    let mut request = client
        .post(url)
        .timeout(target.timeout)
        .header(reqwest::header::CONTENT_TYPE, &outgoing.content_type);
    for (name, value) in target.headers.iter().chain(&outgoing.headers) {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(outgoing.body);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let after = retry_after(&response);
            drain(response).await;
            (Some(status), classify(status, after))
        }
        Err(err) => (None, transport(err, target.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert!(matches!(classify(204, None), Ending::Delivered));
        for retried in [408, 425, 429, 500, 503] {
            assert!(
                matches!(classify(retried, None), Ending::Retry { .. }),
                "{retried}"
            );
        }
        for dead in [301, 400, 401, 404, 410] {
            assert!(
                matches!(classify(dead, None), Ending::Dead { .. }),
                "{dead}"
            );
        }
        let after = Some(Duration::from_secs(7));
        assert!(
            matches!(classify(429, after), Ending::Retry { after: Some(d), .. } if d.as_secs() == 7)
        );
    }
}
