//! Failed authentications, tallied per client in memory and written to the audit log once per
//! window (`broker.auth_failure_audit_seconds`) as one `auth.failed` entry per client with its
//! count, so a flood of bad keys costs one row per client, not one transaction per request.
//! The tally is bounded: past [`MAX_CLIENTS`] clients, the rest share one entry.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{App, AppResult};
use crate::db::audit::Actor;

/// Most clients tallied separately in one window.
pub const MAX_CLIENTS: usize = 10_000;
/// Most short tokens remembered per client (the short token may be logged; it is not secret).
const MAX_SHORT_TOKENS: usize = 5;

#[derive(Debug)]
struct Tally {
    failures: u64,
    throttled: u64,
    short_tokens: BTreeSet<String>,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
}

/// Which client a tally belongs to: an address, or everyone past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Address(Option<IpAddr>),
    Others,
}

/// The failures of the current window.
#[derive(Debug, Default)]
pub struct FailureLedger {
    tallies: Mutex<HashMap<Client, Tally>>,
}

impl FailureLedger {
    /// Counts one failure of `client`; `throttled` when it was answered 429.
    pub fn record(&self, client: Option<IpAddr>, short: Option<String>, throttled: bool) {
        let Ok(mut tallies) = self.tallies.lock() else {
            return;
        };
        let mut key = Client::Address(client);
        if !tallies.contains_key(&key) && tallies.len() >= MAX_CLIENTS {
            key = Client::Others;
        }
        let now = Utc::now();
        let tally = tallies.entry(key).or_insert_with(|| Tally {
            failures: 0,
            throttled: 0,
            short_tokens: BTreeSet::new(),
            first_at: now,
            last_at: now,
        });
        tally.failures += 1;
        tally.throttled += u64::from(throttled);
        tally.last_at = now;
        if let Some(short) = short
            && tally.short_tokens.len() < MAX_SHORT_TOKENS
        {
            tally.short_tokens.insert(short);
        }
    }

    fn take(&self) -> HashMap<Client, Tally> {
        self.tallies
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

impl App {
    /// Counts a refused PAK against its client (written to the audit log by the next flush).
    pub fn record_auth_failure(
        &self,
        client: Option<IpAddr>,
        short: Option<String>,
        throttled: bool,
    ) {
        self.auth_failures.record(client, short, throttled);
    }

    /// Writes the window's failures to the audit log, one entry per client; returns how many.
    pub async fn flush_auth_failures(&self) -> AppResult<usize> {
        let tallies = self.auth_failures.take();
        if tallies.is_empty() {
            return Ok(0);
        }
        let mut work = self.begin().await?;
        let count = tallies.len();
        for (client, tally) in tallies {
            let client = match client {
                Client::Address(Some(address)) => address.to_string(),
                Client::Address(None) => "unknown".to_string(),
                Client::Others => "others".to_string(),
            };
            let details = json!({
                "client": client,
                "failures": tally.failures,
                "throttled": tally.throttled,
                "short_tokens": tally.short_tokens,
                "first_at": tally.first_at,
                "last_at": tally.last_at,
            });
            work.audit_as(Actor::ANONYMOUS, "auth.failed", ("pak", None), details)
                .await?;
        }
        work.commit().await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_are_bounded() {
        let ledger = FailureLedger::default();
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            let address = IpAddr::from(i.to_be_bytes());
            ledger.record(Some(address), Some(format!("s{i}")), false);
        }
        ledger.record(Some(IpAddr::from([0, 0, 0, 1])), Some("again".into()), true);
        let tallies = ledger.take();
        assert_eq!(tallies.len(), MAX_CLIENTS + 1);
        assert_eq!(tallies[&Client::Others].failures, 50);
        let first = &tallies[&Client::Address(Some(IpAddr::from([0, 0, 0, 1])))];
        assert_eq!((first.failures, first.throttled), (2, 1));
        assert!(ledger.take().is_empty(), "a flush starts a new window");
    }
}
