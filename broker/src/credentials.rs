//! Issuing, rotating and revoking PAKs, shared by the API and the CLI. Every change is audited
//! and, on PostgreSQL, announced to all replicas when the transaction commits.

use brokkr_types::Pak;
use serde_json::json;

use crate::auth::Principal;
use crate::auth::pak;
use crate::db::audit::{self, Actor, Record};
use crate::db::{StoreResult, Tx, agents, generators, paks};

fn subject(principal: Principal) -> (&'static str, Option<String>) {
    let (kind, id) = principal.parts();
    let id = (principal != Principal::Admin).then(|| id.to_string());
    (kind, id)
}

async fn audit_pak(
    tx: &mut Tx,
    actor: Actor,
    action: &str,
    principal: Principal,
    short: Option<&str>,
) -> StoreResult<()> {
    let (kind, id) = subject(principal);
    audit::record(
        tx,
        Record {
            actor,
            action,
            resource_type: kind,
            resource_id: id,
            details: json!({ "principal_type": kind, "short_token": short }),
        },
    )
    .await
}

/// Gives a new principal its first PAK.
pub async fn issue(tx: &mut Tx, actor: Actor, principal: Principal) -> StoreResult<Pak> {
    let new = pak::generate();
    paks::insert(tx, principal, &new).await?;
    audit_pak(tx, actor, "pak.created", principal, Some(&new.short)).await?;
    Ok(new.pak)
}

/// Whether the principal still exists (the admin always does).
async fn exists(tx: &mut Tx, principal: Principal) -> StoreResult<bool> {
    Ok(match principal {
        Principal::Admin => true,
        Principal::Generator(id) => generators::get_in(tx, id).await?.is_some(),
        Principal::Agent(id) => agents::get_row_in(tx, id).await?.is_some(),
    })
}

/// A rotated key: the new PAK and the short token of the replaced one.
#[derive(Debug)]
pub struct Rotated {
    pub pak: Pak,
    pub old_short: Option<String>,
}

/// Replaces the principal's PAK inside `tx`; `None` when the principal does not exist.
pub async fn rotate(
    tx: &mut Tx,
    actor: Actor,
    principal: Principal,
) -> StoreResult<Option<Rotated>> {
    if !exists(tx, principal).await? {
        return Ok(None);
    }
    let new = pak::generate();
    let old_short = paks::replace(tx, principal, &new).await?;
    if let Some(old) = &old_short {
        paks::notify_invalidation(tx, old).await?;
    }
    audit_pak(tx, actor, "pak.rotated", principal, Some(&new.short)).await?;
    Ok(Some(Rotated {
        pak: new.pak,
        old_short,
    }))
}

/// Deletes the principal's PAK inside `tx`; returns the short token to drop from caches.
pub async fn revoke(
    tx: &mut Tx,
    actor: Actor,
    principal: Principal,
) -> StoreResult<Option<String>> {
    let old_short = paks::remove(tx, principal).await?;
    if let Some(old) = &old_short {
        paks::notify_invalidation(tx, old).await?;
        audit_pak(tx, actor, "pak.revoked", principal, Some(old)).await?;
    }
    Ok(old_short)
}

/// Creates the admin PAK when the database has none; `Some` only for the call that created it.
pub async fn bootstrap_admin(tx: &mut Tx) -> StoreResult<Option<Pak>> {
    let new = pak::generate();
    if !paks::insert_admin_if_absent(tx, &new).await? {
        return Ok(None);
    }
    audit_pak(
        tx,
        Actor::SYSTEM,
        "pak.created",
        Principal::Admin,
        Some(&new.short),
    )
    .await?;
    Ok(Some(new.pak))
}
