//! `GET /api/v1/whoami`: the identity behind the presented PAK, so an agent learns its own id
//! from its key alone.

use axum::Json;
use brokkr_types::Problem;
use brokkr_types::resources::WhoAmI;

use crate::auth::Principal;
use crate::http::caller::{AnyRole, Caller};

#[utoipa::path(get, path = "/api/v1/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = "4XX", body = Problem)))]
pub async fn whoami(caller: Caller<AnyRole>) -> Json<WhoAmI> {
    let principal = caller.principal();
    let (kind, id) = principal.parts();
    Json(WhoAmI {
        principal_type: kind.to_string(),
        id: (principal != Principal::Admin).then_some(id),
    })
}
