//! Two versions of a stack side by side: objects added, removed and changed, and for each
//! changed object the fields that differ (a Secret's values never shown). At most
//! [`MAX_FIELDS`] fields are listed, so a huge change stays a page a browser can show.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use brokkr_types::manifest_diff::Diff;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::http::ApiError;
use crate::state::AppState;

/// Versions offered in the page's choosers (the newest ones).
const VERSIONS: u32 = 50;
/// Changed fields listed over every object; the rest are counted.
const MAX_FIELDS: usize = 500;

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: Option<Uuid>,
    to: Option<Uuid>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        let detail = "from and to must be deployment object ids";
        return super::problem(&session, ApiError::bad_request("invalid_query", detail));
    };
    let by = session.requester();
    let stack = match state.app.stack(by, id).await {
        Ok(stack) => stack,
        Err(e) => return super::problem(&session, e),
    };
    let window = super::window(VERSIONS, None);
    let versions = match state.app.list_deployment_objects(by, id, window).await {
        Ok(found) => found.items,
        Err(e) => return super::problem(&session, e),
    };
    // Newest first: by default the newest version against the one before it.
    let to = query.to.or(versions.first().map(|v| v.id));
    let from = query.from.or(versions.get(1).map(|v| v.id)).or(to);
    let base = context! { section => "stacks", title => format!("{}: compare versions", stack.name),
    stack => value(&stack), versions => value(&versions), from => value(&from), to => value(&to) };
    let (Some(from), Some(to)) = (from, to) else {
        return render_page("diff.html", Some(&session), base);
    };
    match state.app.diff_versions(by, id, from, to).await {
        Ok(diff) => {
            let (diff, left_out) = bounded(diff);
            render_page(
                "diff.html",
                Some(&session),
                context! { diff => value(&diff), same => diff.is_empty(), left_out, ..base },
            )
        }
        Err(e) => super::problem(&session, e),
    }
}

/// The diff with at most [`MAX_FIELDS`] fields, and how many were left out.
fn bounded(mut diff: Diff) -> (Diff, usize) {
    let mut room = MAX_FIELDS;
    let mut left_out = 0;
    for object in &mut diff.changed {
        let keep = object.fields.len().min(room);
        left_out += object.fields.len() - keep;
        object.fields.truncate(keep);
        room -= keep;
    }
    (diff, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_huge_change_is_cut_to_the_bound_and_counted() {
        let map = |n: usize| {
            let data: serde_json::Map<_, _> = (0..n)
                .map(|i| (format!("k{i}"), json!(format!("v{i}-{n}"))))
                .collect();
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": data})
        };
        let diff = Diff::between(&[map(MAX_FIELDS + 10)], &[map(MAX_FIELDS + 20)]);
        let (cut, left_out) = bounded(diff);
        assert_eq!(cut.changed[0].fields.len(), MAX_FIELDS);
        // 510 values changed and 10 keys added: 520 fields, 500 listed.
        assert_eq!(left_out, 20);
    }
}
