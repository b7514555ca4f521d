//! Issuing, rotating and revoking PAKs inside a use case's [`Work`]: every change is audited,
//! and a replaced or revoked key is forgotten by every replica once the work commits.

use brokkr_types::Pak;
use serde_json::json;

use super::outbox::DomainEvent;
use super::{AppResult, Work};
use crate::auth::pak;
use crate::db::audit::Actor;
use crate::db::{agents, generators, paks};
use crate::domain::Principal;

async fn audit_pak(
    work: &mut Work,
    actor: Actor,
    action: &str,
    principal: Principal,
    short: &str,
) -> AppResult<()> {
    let (kind, id) = principal.parts();
    let id = (principal != Principal::Admin).then_some(id);
    let details = json!({ "principal_type": kind, "short_token": short });
    work.audit_as(actor, action, (kind, id), details).await
}

/// Gives a new principal its first PAK.
pub(crate) async fn issue(work: &mut Work, actor: Actor, principal: Principal) -> AppResult<Pak> {
    let new = pak::generate();
    paks::insert(&mut work.tx, principal, new.stored()).await?;
    audit_pak(work, actor, "pak.created", principal, &new.short).await?;
    Ok(new.pak)
}

/// Whether the principal still exists (the admin always does).
async fn exists(work: &mut Work, principal: Principal) -> AppResult<bool> {
    Ok(match principal {
        Principal::Admin => true,
        Principal::Generator(id) => generators::get_in(&mut work.tx, id).await?.is_some(),
        Principal::Agent(id) => agents::get_row_in(&mut work.tx, id).await?.is_some(),
    })
}

/// Replaces the principal's PAK; `None` when the principal does not exist.
pub(crate) async fn rotate(
    work: &mut Work,
    actor: Actor,
    principal: Principal,
) -> AppResult<Option<Pak>> {
    if !exists(work, principal).await? {
        return Ok(None);
    }
    let new = pak::generate();
    let old = paks::replace(&mut work.tx, principal, new.stored()).await?;
    work.revoked(old);
    end_console_sessions(work, principal).await?;
    audit_pak(work, actor, "pak.rotated", principal, &new.short).await?;
    let (kind, _) = principal.parts();
    let (generator, agent) = match principal {
        Principal::Generator(id) => (Some(id), None),
        Principal::Agent(id) => (None, Some(id)),
        Principal::Admin => (None, None),
    };
    work.emit(DomainEvent::pak_rotated(kind, generator, agent));
    Ok(Some(new.pak))
}

/// Deletes the principal's PAK (the principal was deleted).
pub(crate) async fn revoke(work: &mut Work, actor: Actor, principal: Principal) -> AppResult<()> {
    if let Some(old) = paks::remove(&mut work.tx, principal).await? {
        audit_pak(work, actor, "pak.revoked", principal, &old).await?;
        work.revoked(Some(old));
    }
    end_console_sessions(work, principal).await
}

/// A console session lives no longer than the PAK it was signed in with.
async fn end_console_sessions(work: &mut Work, principal: Principal) -> AppResult<()> {
    let whose = match principal {
        Principal::Admin => None,
        Principal::Generator(id) => Some(id),
        Principal::Agent(_) => return Ok(()),
    };
    crate::db::ui_sessions::end_for(&mut work.tx, whose).await?;
    Ok(())
}

/// Creates the admin PAK when the database has none (`preset` when given, else a new one);
/// `Some` only for the call that created it.
pub(crate) async fn bootstrap_admin(
    work: &mut Work,
    preset: Option<pak::NewPak>,
) -> AppResult<Option<Pak>> {
    let new = preset.unwrap_or_else(pak::generate);
    if !paks::insert_admin_if_absent(&mut work.tx, new.stored()).await? {
        return Ok(None);
    }
    audit_pak(
        work,
        Actor::SYSTEM,
        "pak.created",
        Principal::Admin,
        &new.short,
    )
    .await?;
    Ok(Some(new.pak))
}
