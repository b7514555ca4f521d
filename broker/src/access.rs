//! Row rules: which generators, stacks and agents a principal may see. A row the caller may
//! not see answers 404, exactly as if it did not exist.

use uuid::Uuid;

use crate::auth::Principal;
use crate::db::agents::AgentRow;
use crate::db::stacks::StackRow;
use crate::db::{Db, agents, generators, stacks};
use crate::error::{ApiError, ApiResult};

/// A generator visible to `caller` (admins see all; a generator sees itself).
pub async fn generator(
    db: &Db,
    caller: Principal,
    id: Uuid,
) -> ApiResult<brokkr_types::resources::Generator> {
    let visible = match caller {
        Principal::Admin => true,
        Principal::Generator(own) => own == id,
        Principal::Agent(_) => false,
    };
    let found = if visible {
        generators::get(db, id).await?
    } else {
        None
    };
    found.ok_or(ApiError::NotFound("generator"))
}

/// A live stack visible to `caller` (admins see all; a generator sees its own).
pub async fn stack(db: &Db, caller: Principal, id: Uuid) -> ApiResult<StackRow> {
    let row = stacks::get_row(db, id)
        .await?
        .ok_or(ApiError::NotFound("stack"))?;
    match caller {
        Principal::Admin => Ok(row),
        Principal::Generator(own) if own == row.generator_id => Ok(row),
        _ => Err(ApiError::NotFound("stack")),
    }
}

/// A live agent visible to `caller` (admins see all; an agent sees itself).
pub async fn agent(db: &Db, caller: Principal, id: Uuid) -> ApiResult<AgentRow> {
    let visible = match caller {
        Principal::Admin => true,
        Principal::Agent(own) => own == id,
        Principal::Generator(_) => true,
    };
    let found = if visible {
        agents::get_row(db, id).await?
    } else {
        None
    };
    found.ok_or(ApiError::NotFound("agent"))
}

/// For generator callers, the generator whose stacks a listing is restricted to.
pub fn only_generator(caller: Principal) -> Option<Uuid> {
    match caller {
        Principal::Generator(id) => Some(id),
        _ => None,
    }
}
