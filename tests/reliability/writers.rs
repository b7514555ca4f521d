//! Writers that hammer the broker and record which of their writes it acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::json;

use crate::api::{Answer, Api, Fleet, config_map};

/// The three kinds of write a fleet makes all the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A deployment object, sent with an `Idempotency-Key`.
    Object,
    /// An agent event, with its `idempotency_key`.
    Event,
    /// A new stack, named by the key (a retry answers 409 once it exists).
    Stack,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Object, Kind::Event, Kind::Stack];

    fn prefix(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Event => "event",
            Self::Stack => "stack",
        }
    }
}

/// One write and whether the broker acknowledged it (answered 2xx before it was killed).
#[derive(Debug, Clone)]
pub struct Write {
    pub kind: Kind,
    pub key: String,
    pub acknowledged: bool,
}

/// Sends one write of `kind` under `key`.
pub async fn write(
    api: &Api,
    fleet: &Fleet,
    kind: Kind,
    key: &str,
) -> Result<Answer, reqwest::Error> {
    match kind {
        Kind::Object => {
            let path = format!("/api/v1/stacks/{}/deployment-objects", fleet.stack);
            let body = json!({ "yaml_content": config_map(key) });
            let headers = [("Idempotency-Key", key)];
            api.send(Method::POST, &path, &fleet.generator, Some(&body), &headers)
                .await
        }
        Kind::Event => {
            let path = format!("/api/v1/agents/{}/events", fleet.agent);
            let body = json!({
                "idempotency_key": key,
                "deployment_object_id": fleet.object,
                "event_type": "apply",
                "status": "success",
            });
            api.send(Method::POST, &path, &fleet.agent_pak, Some(&body), &[])
                .await
        }
        Kind::Stack => {
            let body = json!({ "name": key });
            api.send(
                Method::POST,
                "/api/v1/stacks",
                &fleet.generator,
                Some(&body),
                &[],
            )
            .await
        }
    }
}

/// Writes until the broker stops answering, counting acknowledgements in `acknowledged`.
pub async fn run(
    api: Api,
    fleet: Fleet,
    kind: Kind,
    writer: usize,
    acknowledged: Arc<AtomicUsize>,
) -> Vec<Write> {
    let mut writes = Vec::new();
    for i in 0..10_000 {
        let key = format!("{}-{writer}-{i}", kind.prefix());
        let answer = write(&api, &fleet, kind, &key).await;
        let ok = matches!(answer, Ok((200 | 201, _)));
        writes.push(Write {
            kind,
            key,
            acknowledged: ok,
        });
        if !ok {
            break;
        }
        acknowledged.fetch_add(1, Ordering::SeqCst);
    }
    writes
}
