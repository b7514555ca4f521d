//! A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every request
//! and answers as scripted, and an independent check of Standard Webhooks signatures (HMAC
//! written out from RFC 2104 over SHA-256, not the broker's `hmac` crate).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply {
    Status(u16),
    /// The status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Never answers.
    Hang,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
}

/// A running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.received.lock().unwrap().push(Received {
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    shared.arrived.notify_waiters();
    let scripted = shared.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or(*shared.default.lock().unwrap());
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::RetryAfter(code, seconds) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", seconds.to_string())],
        )
            .into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

impl Receiver {
    /// A receiver answering 204 unless told otherwise.
    pub async fn start() -> Self {
        Self::answering(Reply::Status(204)).await
    }

    pub async fn answering(default: Reply) -> Self {
        let shared = Arc::new(Shared {
            received: Mutex::default(),
            script: Mutex::default(),
            default: Mutex::new(default),
            arrived: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Answers every further request (after the script) with `reply`.
    pub fn answer(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = reply;
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until `n` requests arrived; returns them.
    pub async fn received(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.count() >= n {
                return self.all();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, arrived).await.is_ok(),
                "the receiver got {} of {n} requests in 30 s",
                self.count()
            );
        }
    }

    /// Waits for the first request whose JSON body satisfies `matches`.
    pub async fn first_matching(&self, matches: impl Fn(&Value) -> bool) -> Received {
        let mut seen = 0;
        loop {
            let all = self.received(seen + 1).await;
            if let Some(found) = all.iter().find(|r| matches(&r.json())) {
                return found.clone();
            }
            seen = all.len();
        }
    }
}

/// HMAC-SHA256 as RFC 2104 defines it.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Whether one of the `webhook-signature` entries was made with `secret` (Standard Webhooks:
/// `v1,` + base64 HMAC of `id.timestamp.body` under the base64-decoded secret).
pub fn signed_with(secret: &str, request: &Received) -> bool {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    let content = [
        request.header("webhook-id").as_bytes(),
        b".",
        request.header("webhook-timestamp").as_bytes(),
        b".",
        &request.body,
    ]
    .concat();
    let expected = format!("v1,{}", BASE64.encode(hmac_sha256(&key, &content)));
    request
        .header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

#[test]
fn the_independent_hmac_matches_the_specification_example() {
    let request = Received {
        uri: "/".into(),
        headers: [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,bm9ldHZhbGlk v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect(),
        body: br#"{"test": 2432232314}"#.to_vec(),
    };
    assert!(signed_with(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &request
    ));
    assert!(!signed_with("whsec_bm90IHRoZSBzZWNyZXQ=", &request));
}
