//! Watches (`?watch=true`): a journal of recent changes, and the stream of events a watch
//! request receives: ADDED, MODIFIED and DELETED for the objects it selects from the resource
//! version it names (or every current object as ADDED without one), BOOKMARK events when asked
//! for (`allowWatchBookmarks`), an ERROR with 410 Expired when that version is too old, and the
//! end after `timeoutSeconds`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Shared;
use crate::kinds::Kind;
use crate::selector::{FieldSelector, Selector};
use crate::store::Key;

/// Changes kept for watches that resume from a resource version.
const KEEP: usize = 4096;
/// Longest watch, whatever `timeoutSeconds` asks.
const LONGEST: Duration = Duration::from_secs(1800);

/// One change.
#[derive(Debug, Clone)]
pub struct Change {
    pub version: u64,
    pub key: Key,
    pub kind: &'static str,
    pub object: Value,
}

/// The recent changes, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    changes: VecDeque<Change>,
    /// The newest version no longer in the journal.
    forgotten: u64,
}

impl Journal {
    pub fn record(&mut self, change: Change) {
        if self.changes.len() == KEEP
            && let Some(old) = self.changes.pop_front()
        {
            self.forgotten = old.version;
        }
        self.changes.push_back(change);
    }

    /// The changes after `version`; `None` when some of them were forgotten.
    pub fn since(&self, version: u64) -> Option<Vec<Change>> {
        if version < self.forgotten {
            return None;
        }
        Some(
            self.changes
                .iter()
                .filter(|c| c.version > version)
                .cloned()
                .collect(),
        )
    }
}

/// What one watch selects.
#[derive(Debug, Clone)]
pub struct Filter {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl Filter {
    fn selects(&self, change: &Change) -> bool {
        change.key.group == self.kind.group
            && change.key.plural == self.kind.plural
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| &change.key.namespace == ns)
            && self.labels.matches(&change.object)
            && self.fields.matches(&change.object)
    }
}

/// How a watch was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub filter: Filter,
    pub since: Option<u64>,
    pub bookmarks: bool,
    pub timeout: Duration,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({ "type": kind, "object": object }).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Where a running watch stands.
struct Watching {
    shared: Arc<Shared>,
    filter: Filter,
    queue: VecDeque<Bytes>,
    cursor: u64,
    changes: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    bookmark_every: Option<Duration>,
    next_bookmark: Instant,
}

impl Watching {
    /// Queues what changed after the cursor.
    fn catch_up(&mut self) {
        let Ok(store) = self.shared.store.lock() else {
            return;
        };
        let changes = store.journal().since(self.cursor).unwrap_or_default();
        for change in changes.iter().filter(|c| self.filter.selects(c)) {
            self.queue.push_back(line(change.kind, &change.object));
        }
        self.cursor = store.resource_version();
    }

    fn bookmark(&mut self) {
        let object = json!({
            "kind": self.filter.kind.kind,
            "apiVersion": self.filter.kind.api_version(),
            "metadata": { "resourceVersion": self.cursor.to_string() },
        });
        self.queue.push_back(line("BOOKMARK", &object));
    }

    /// The next piece of the response; `None` ends it.
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        loop {
            if let Some(bytes) = self.queue.pop_front() {
                return Some((Ok(bytes), self));
            }
            let bookmark_at = self.bookmark_every.map(|_| self.next_bookmark);
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    self.catch_up();
                }
                () = tokio::time::sleep_until(bookmark_at.unwrap_or(self.deadline)), if bookmark_at.is_some() => {
                    self.next_bookmark = Instant::now() + self.bookmark_every.unwrap_or(LONGEST);
                    self.bookmark();
                }
                () = tokio::time::sleep_until(self.deadline) => return None,
            }
        }
    }
}

/// Answers a watch request with a stream of events.
pub fn serve(shared: Arc<Shared>, request: Request) -> Response {
    let changes = shared.changes.subscribe();
    let mut expired = false;
    let (queue, cursor, every) = {
        let Ok(store) = shared.store.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut queue = VecDeque::new();
        match request.since {
            None => {
                for object in store.select(&request.filter) {
                    queue.push_back(line("ADDED", &object));
                }
            }
            Some(version) => match store.journal().since(version) {
                Some(changes) => {
                    for change in changes.iter().filter(|c| request.filter.selects(c)) {
                        queue.push_back(line(change.kind, &change.object));
                    }
                }
                None => {
                    let gone = crate::status::ApiErr::new(
                        410,
                        "Expired",
                        format!("too old resource version: {version}"),
                    );
                    queue.push_back(line("ERROR", &gone.body()));
                    expired = true;
                }
            },
        }
        (queue, store.resource_version(), store.bookmark_interval)
    };
    let now = Instant::now();
    let watching = Watching {
        shared,
        filter: request.filter,
        queue,
        cursor,
        changes,
        deadline: if expired {
            now
        } else {
            now + request.timeout.min(LONGEST)
        },
        bookmark_every: request.bookmarks.then_some(every),
        next_bookmark: now + every,
    };
    let stream = futures::stream::unfold(watching, Watching::next);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
