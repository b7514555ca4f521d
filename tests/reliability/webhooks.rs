//! Webhooks through crashes and replicas: an event committed before a SIGKILL is delivered
//! after the restart, a delivery cut off by a SIGKILL is made exactly once more, and two
//! replicas on one PostgreSQL deliver a thousand events once each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use brokkr_e2e::database::{Backend, FreshDatabase};
use brokkr_e2e::process::BrokerProcess;
use brokkr_e2e::{PATIENCE, eventually};
use serde_json::{Value, json};

use crate::api::Api;

/// A key ring and this machine's receivers, for every broker here.
const WEBHOOKS: [(&str, &str); 3] = [
    (
        "BROKKR__WEBHOOKS__ENCRYPTION_KEYS",
        "rel:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:active",
    ),
    ("BROKKR__WEBHOOKS__ALLOWED_CIDRS", "127.0.0.0/8"),
    ("BROKKR__WEBHOOKS__RETRY_BASE_MS", "100"),
];

/// Records requests by `webhook-id`; the first `hang` requests are never answered.
#[derive(Debug, Default)]
struct Seen {
    by_id: Mutex<HashMap<String, usize>>,
    order: Mutex<Vec<String>>,
    hang: Mutex<usize>,
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> &'static str {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    *seen.by_id.lock().unwrap().entry(id.clone()).or_default() += 1;
    seen.order.lock().unwrap().push(id);
    let hang = {
        let mut left = seen.hang.lock().unwrap();
        let hang = *left > 0;
        *left = left.saturating_sub(1);
        hang
    };
    if hang {
        std::future::pending::<()>().await;
    }
    "ok"
}

async fn receiver(hang: usize) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen {
        hang: Mutex::new(hang),
        ..Seen::default()
    });
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

impl Seen {
    fn count(&self, id: &str) -> usize {
        self.by_id.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.order.lock().unwrap().len()
    }

    fn distinct(&self) -> usize {
        self.by_id.lock().unwrap().len()
    }
}

async fn subscribe(api: &Api, admin: &str, url: &str, extra: Value) {
    let mut body = json!({ "name": "rel", "url": url, "event_types": ["stack.created"] });
    if let (Some(target), Value::Object(more)) = (body.as_object_mut(), extra) {
        target.extend(more);
    }
    api.created("/api/v1/webhooks", admin, body).await;
}

/// A generator's PAK (reaching everything).
async fn generator(api: &Api, admin: &str) -> String {
    let body = json!({ "name": "ci", "reach": "true" });
    let created = api.created("/api/v1/generators", admin, body).await;
    created["pak"].as_str().unwrap().to_string()
}

/// Creates a stack: one `stack.created` event.
async fn stack(api: &Api, pak: &str, name: &str) {
    api.created("/api/v1/stacks", pak, json!({ "name": name }))
        .await;
}

#[tokio::test]
async fn sigkill_between_commit_and_delivery_sqlite() {
    sigkill_between_commit_and_delivery(Backend::Sqlite).await
}

#[tokio::test]
async fn sigkill_between_commit_and_delivery_postgres() {
    sigkill_between_commit_and_delivery(Backend::Postgres).await
}

async fn sigkill_between_commit_and_delivery(backend: Backend) {
    let database = FreshDatabase::create(backend).await;
    let mut env = WEBHOOKS.to_vec();
    env.extend([
        ("BROKKR__WEBHOOKS__DELIVER", "false"),
        ("BROKKR__WEBHOOKS__LEASE_SECONDS", "14"),
    ]);
    let mut broker = BrokerProcess::start(&database.url, &env).await;
    let api = Api::new(&broker.url);
    let (url, seen) = receiver(1).await;
    subscribe(&api, &broker.admin, &url, json!({ "timeout_seconds": 2 })).await;
    let pak = generator(&api, &broker.admin).await;
    // Committed while nothing delivers, then the broker dies.
    stack(&api, &pak, "first").await;
    broker.kill();
    broker.set("BROKKR__WEBHOOKS__DELIVER", "true");
    broker.restart().await;
    // Delivered after the restart; the receiver holds the request and the broker dies again.
    let first = eventually(PATIENCE, "the first attempt", || async {
        seen.order.lock().unwrap().first().cloned()
    })
    .await;
    broker.kill();
    broker.restart().await;
    // Once the dead broker's lease ends, the delivery is made once more and answered.
    eventually(PATIENCE, "the delivery to be made again", || async {
        (seen.count(&first) == 2).then_some(())
    })
    .await;
    stack(&api, &pak, "second").await;
    eventually(PATIENCE, "the next event", || async {
        (seen.distinct() == 2).then_some(())
    })
    .await;
    assert_eq!(seen.count(&first), 2, "exactly once more: {:?}", seen.by_id);
    assert_eq!(seen.total(), 3, "{:?}", seen.order);
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let database = FreshDatabase::create(Backend::Postgres).await;
    let a = BrokerProcess::start(&database.url, &WEBHOOKS).await;
    let b = BrokerProcess::start_replica(&database.url, &WEBHOOKS).await;
    let (url, seen) = receiver(0).await;
    let api_a = Api::new(&a.url);
    let api_b = Api::new(&b.url);
    subscribe(&api_a, &a.admin, &url, json!({})).await;
    let pak = generator(&api_a, &a.admin).await;
    const EVENTS: usize = 1000;
    let writers = (0..8).map(|w| {
        let api = if w % 2 == 0 {
            api_a.clone()
        } else {
            api_b.clone()
        };
        let pak = pak.clone();
        tokio::spawn(async move {
            for n in (w..EVENTS).step_by(8) {
                stack(&api, &pak, &format!("s{n}")).await;
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    eventually(PATIENCE * 3, "every event delivered", || async {
        (seen.distinct() == EVENTS).then_some(())
    })
    .await;
    let delivered = |api: &Api, admin: &str| {
        let api = api.clone();
        let admin = admin.to_string();
        async move {
            let metrics = api.text("/metrics", &admin).await;
            metric(
                &metrics,
                r#"brokkr_webhook_attempts_total{outcome="delivered"}"#,
            )
        }
    };
    let (by_a, by_b) = (
        delivered(&api_a, &a.admin).await,
        delivered(&api_b, &a.admin).await,
    );
    assert_eq!(seen.total(), EVENTS, "an event was delivered twice");
    assert_eq!(by_a + by_b, EVENTS as u64, "a: {by_a}, b: {by_b}");
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas share the work: a {by_a}, b {by_b}"
    );
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
