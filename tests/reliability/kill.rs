//! SIGKILL during mixed writes: nothing acknowledged is lost, nothing retried is doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brokkr_e2e::database::{Backend, FreshDatabase};
use brokkr_e2e::process::BrokerProcess;
use brokkr_e2e::{PATIENCE, eventually};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{Api, Fleet, config_map};
use crate::writers::{self, Kind, Write};

/// Writers per kind of write.
const WRITERS: usize = 2;
/// Acknowledged writes to wait for before the kill.
const BEFORE_KILL: usize = 60;

#[tokio::test]
async fn sigkill_during_writes_sqlite() {
    sigkill_during_writes(Backend::Sqlite).await
}

#[tokio::test]
async fn sigkill_during_writes_postgres() {
    sigkill_during_writes(Backend::Postgres).await
}

async fn sigkill_during_writes(backend: Backend) {
    let database = FreshDatabase::create(backend).await;
    let mut broker = BrokerProcess::start(&database.url, &[]).await;
    let api = Api::new(&broker.url);
    let fleet = Fleet::create(&api, &broker.admin).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for kind in Kind::ALL {
        for writer in 0..WRITERS {
            let run = writers::run(
                api.clone(),
                fleet.clone(),
                kind,
                writer,
                acknowledged.clone(),
            );
            tasks.push(tokio::spawn(run));
        }
    }
    eventually(PATIENCE, "writes to be acknowledged", || async {
        (acknowledged.load(Ordering::SeqCst) >= BEFORE_KILL).then_some(())
    })
    .await;
    broker.kill();
    let mut writes = Vec::new();
    for task in tasks {
        writes.extend(task.await.unwrap());
    }
    assert!(
        writes.iter().any(|w| !w.acknowledged),
        "every writer stops at the kill"
    );

    broker.restart().await;
    let api = Api::new(&broker.url);
    retry_unacknowledged(&api, &fleet, &writes).await;
    check_objects(&api, &fleet, &writes).await;
    check_events(&api, &fleet, &broker.admin, &writes).await;
    check_stacks(&api, &fleet, &writes).await;
    the_audit_chain_verifies(&database.url);
}

/// Nothing was half-written into the hash-chained audit log.
fn the_audit_chain_verifies(database_url: &str) {
    let verified = std::process::Command::new(brokkr_e2e::binary("brokkr-broker"))
        .args(["audit", "verify"])
        .env("BROKKR__DATABASE__URL", database_url)
        .env("BROKKR__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(verified.status.success(), "audit verify: {verified:?}");
}

/// Sends every write the kill interrupted once more, with the same key.
async fn retry_unacknowledged(api: &Api, fleet: &Fleet, writes: &[Write]) {
    for write in writes.iter().filter(|w| !w.acknowledged) {
        let (status, body) = writers::write(api, fleet, write.kind, &write.key)
            .await
            .unwrap();
        let accepted = match write.kind {
            Kind::Stack => [200, 201, 409].contains(&status),
            _ => [200, 201].contains(&status),
        };
        assert!(accepted, "retry of {}: {status} {body}", write.key);
    }
}

fn keys(writes: &[Write], kind: Kind) -> BTreeSet<String> {
    writes
        .iter()
        .filter(|w| w.kind == kind)
        .map(|w| w.key.clone())
        .collect()
}

/// Counts stored items by a key each carries; every key must appear exactly once.
fn assert_once_each(what: &str, stored: BTreeMap<String, usize>, expected: BTreeSet<String>) {
    let doubled: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "{what} stored twice: {doubled:?}");
    let found: BTreeSet<String> = stored.into_keys().collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    assert!(missing.is_empty(), "{what} lost: {missing:?}");
}

fn count_by(items: &[Value], key: impl Fn(&Value) -> Option<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        if let Some(k) = key(item) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

async fn check_objects(api: &Api, fleet: &Fleet, writes: &[Write]) {
    let path = format!("/api/v1/stacks/{}/deployment-objects", fleet.stack);
    let items = api.items(&path, &fleet.generator).await;
    let expected = keys(writes, Kind::Object);
    let by_checksum: BTreeMap<String, String> = expected
        .iter()
        .map(|key| (hex::encode(Sha256::digest(config_map(key))), key.clone()))
        .collect();
    let stored = count_by(&items, |o| {
        by_checksum.get(o["yaml_checksum"].as_str()?).cloned()
    });
    assert_once_each("deployment objects", stored, expected);
    let written = keys(writes, Kind::Object).len() + 1;
    assert_eq!(items.len(), written, "one stored object per submission key");
}

async fn check_events(api: &Api, fleet: &Fleet, admin: &str, writes: &[Write]) {
    let path = format!("/api/v1/agents/{}/events", fleet.agent);
    let items = api.items(&path, admin).await;
    let stored = count_by(&items, |e| e["idempotency_key"].as_str().map(String::from));
    assert_once_each("events", stored, keys(writes, Kind::Event));
}

async fn check_stacks(api: &Api, fleet: &Fleet, writes: &[Write]) {
    let items = api.items("/api/v1/stacks", &fleet.generator).await;
    let stored = count_by(&items, |s| {
        let name = s["name"].as_str()?;
        name.starts_with("stack-").then(|| name.to_string())
    });
    assert_once_each("stacks", stored, keys(writes, Kind::Stack));
}
