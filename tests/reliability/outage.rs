//! A PostgreSQL outage while serving: the broker answers 503 (never 500, never a hang) while
//! the database is away, probes stay fast, and it recovers without a restart: writes succeed
//! again and the change feed reconnects (a CLI rotation elsewhere revokes the old PAK).

use std::time::{Duration, Instant};

use brokkr_e2e::database::{
    Backend, FreshDatabase, postgres_admin, postgres_admin_url, postgres_url,
};
use brokkr_e2e::process::BrokerProcess;
use brokkr_e2e::{PATIENCE, eventually};

use crate::api::{Api, Fleet};
use crate::proxy::{Proxy, postgres_address};
use crate::writers::{Kind, write};

#[tokio::test]
async fn a_postgres_outage_is_ridden_out_without_a_restart() {
    let database = FreshDatabase::create(Backend::Postgres).await;
    let mut proxy = Proxy::start(postgres_address(&postgres_admin_url())).await;
    let through_proxy = postgres_url(&database.name, Some(proxy.port));
    let broker = BrokerProcess::start(&through_proxy, &[]).await;
    let api = Api::new(&broker.url);
    let fleet = Fleet::create(&api, &broker.admin).await;

    // What a restart does: the server terminates every session, then refuses connections.
    terminate_sessions(&database.name).await;
    proxy.take_down().await;
    eventually(PATIENCE, "readyz to report the outage", || async {
        (status(&api, "/readyz").await == 503).then_some(())
    })
    .await;
    let started = Instant::now();
    assert_eq!(status(&api, "/healthz").await, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz stays fast"
    );
    let (refused, body) = write(&api, &fleet, Kind::Object, "during-outage")
        .await
        .unwrap();
    assert!(
        refused == 503,
        "a write without a database answers 503: {refused} {body}\n{}",
        broker.logs()
    );
    assert_eq!(body["code"], "unavailable");

    proxy.bring_back().await;
    eventually(PATIENCE, "readyz to recover", || async {
        (status(&api, "/readyz").await == 200).then_some(())
    })
    .await;
    for key in ["during-outage", "after-outage"] {
        let (code, body) = write(&api, &fleet, Kind::Object, key).await.unwrap();
        assert_eq!(code, 201, "{key} after recovery: {body}");
    }
    let path = format!("/api/v1/stacks/{}/deployment-objects", fleet.stack);
    assert_eq!(api.items(&path, &fleet.generator).await.len(), 3);
    the_feed_is_back(&api, &fleet, &database.name).await;
}

async fn status(api: &Api, path: &str) -> u16 {
    api.send(reqwest::Method::GET, path, "", None, &[])
        .await
        .map_or(0, |(status, _)| status)
}

/// Ends every session on `database` from the server side (a restart's first step).
async fn terminate_sessions(database: &str) {
    let admin = postgres_admin().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
}

/// A PAK rotated by the CLI (on the database directly) stops working on the running broker
/// well before its cache entry would expire: the broker is listening for changes again.
async fn the_feed_is_back(api: &Api, fleet: &Fleet, database: &str) {
    let path = format!("/api/v1/agents/{}/target-state", fleet.agent);
    assert_eq!(api.get(&path, &fleet.agent_pak).await.0, 200);
    let rotated = std::process::Command::new(brokkr_e2e::binary("brokkr-broker"))
        .args(["rotate", "agent", "--uuid", &fleet.agent.to_string()])
        .env("BROKKR__DATABASE__URL", postgres_url(database, None))
        .env("BROKKR__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    eventually(PATIENCE, "the rotated PAK to be refused", || async {
        (api.get(&path, &fleet.agent_pak).await.0 == 401).then_some(())
    })
    .await;
}
