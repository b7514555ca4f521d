//! The route table of the access matrix: every route, and the status each authenticated caller
//! should get from it.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Case, World};
use crate::helpers::CONFIG_MAP;

fn case(
    method: Method,
    path: fn(&World) -> String,
    body: fn(&World) -> Option<Value>,
    expect: [u16; 5],
) -> Case {
    Case {
        method,
        path,
        body,
        expect,
        public: false,
    }
}

/// What steering stack A's (absent) staged rollout answers each caller.
const STEER: [u16; 5] = [409, 409, 404, 403, 403];

fn none(_: &World) -> Option<Value> {
    None
}

fn public(path: fn(&World) -> String) -> Case {
    Case {
        method: Method::GET,
        path,
        body: none,
        expect: [200; 5],
        public: true,
    }
}

pub(super) fn cases() -> Vec<Case> {
    use Method as M;
    vec![
        public(|_| "/healthz".into()),
        public(|_| "/readyz".into()),
        public(|_| "/api/v1/openapi.json".into()),
        case(
            M::GET,
            |_| "/api/v1/whoami".into(),
            none,
            [200, 200, 200, 200, 200],
        ),
        // Generators.
        case(
            M::POST,
            |_| "/api/v1/generators".into(),
            |_| Some(json!({ "name": format!("n-{}", Uuid::new_v4().simple()) })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/generators".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/generators/{}", w.gen_a.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PUT,
            |w| format!("/api/v1/generators/{}", w.gen_a.0),
            |_| Some(json!({ "description": "x" })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/generators/{}", w.gen_a.0),
            |_| Some(json!({ "description": "x" })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/generators/{}?dry_run=true", w.gen_a.0),
            |_| Some(json!({ "reach": "true" })),
            [200, 403, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/generators/{}", w.gen_a.0),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/generators/{}/rotate-pak", w.gen_a.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        // Stacks and their subresources.
        case(
            M::POST,
            |_| "/api/v1/stacks".into(),
            |w| Some(json!({ "name": "new", "generator_id": w.gen_a.0 })),
            [201, 201, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/stacks".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/stacks/{}", w.stack_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PUT,
            |w| format!("/api/v1/stacks/{}", w.stack_a),
            |_| Some(json!({ "description": "d" })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/stacks/{}", w.stack_a),
            |_| Some(json!({ "description": "d" })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/stacks/{}?dry_run=true", w.stack_a),
            |_| Some(json!({ "target_expression": "agent.annotations.missing == 'x'" })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/stacks/{}", w.stack_a),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/labels", w.stack_a),
            |_| Some(json!({ "label": "new" })),
            [201, 201, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/stacks/{}/labels/prod", w.stack_a),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/annotations", w.stack_a),
            |_| Some(json!({ "key": "k", "value": "v" })),
            [201, 201, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/stacks/{}/annotations/region", w.stack_a),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/deployment-objects", w.stack_a),
            |_| Some(json!({ "yaml_content": CONFIG_MAP })),
            [201, 201, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/stacks/{}/deployment-objects", w.stack_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/stacks/{}/events", w.stack_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/deployment-objects/{}", w.object_a),
            none,
            [200, 200, 404, 200, 404],
        ),
        // Agents and their subresources.
        case(
            M::POST,
            |_| "/api/v1/agents".into(),
            |_| {
                Some(
                    json!({ "name": format!("n-{}", Uuid::new_v4().simple()), "cluster_name": "c" }),
                )
            },
            [201, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/agents".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/agents/{}", w.agent_x.0),
            none,
            [200, 403, 403, 200, 404],
        ),
        case(
            M::PUT,
            |w| format!("/api/v1/agents/{}", w.agent_x.0),
            |_| Some(json!({ "cluster_name": "c2" })),
            [200, 403, 403, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/agents/{}", w.agent_x.0),
            |_| Some(json!({ "status": "active" })),
            [200, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/agents/{}", w.agent_x.0),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/rotate-pak", w.agent_x.0),
            none,
            [200, 403, 403, 200, 404],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/heartbeat", w.agent_x.0),
            |_| Some(json!({ "kubernetes_reachable": true })),
            [403, 403, 403, 204, 404],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/labels", w.agent_x.0),
            |_| Some(json!({ "label": "new" })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/agents/{}/labels/prod", w.agent_x.0),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/annotations", w.agent_x.0),
            |_| Some(json!({ "key": "k", "value": "v" })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/agents/{}/annotations/region", w.agent_x.0),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/agents/{}/targets", w.agent_x.0),
            none,
            [200, 200, 404, 200, 404],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/targets", w.agent_x.0),
            |w| Some(json!({ "stack_id": w.stack_a2 })),
            [201, 201, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/agents/{}/targets/{}", w.agent_x.0, w.stack_a),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/targets", w.stack_a2),
            |w| Some(json!({ "agent_ids": [w.agent_x.0] })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/agents/{}/events", w.agent_x.0),
            |w| {
                Some(
                    json!({ "idempotency_key": "k1", "deployment_object_id": w.object_a, "event_type": "apply", "status": "success" }),
                )
            },
            [403, 403, 403, 201, 404],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/agents/{}/events", w.agent_x.0),
            none,
            [200, 200, 404, 200, 404],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/agents/{}/target-state", w.agent_x.0),
            none,
            [200, 403, 403, 200, 404],
        ),
        // Health, rollouts and the fleet view.
        case(
            M::PUT,
            |w| format!("/api/v1/agents/{}/health", w.agent_x.0),
            |w| {
                Some(
                    json!({ "deployment_objects": [{ "deployment_object_id": w.object_a, "status": "healthy" }] }),
                )
            },
            [403, 403, 403, 204, 404],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/deployment-objects/{}/health", w.object_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/deployment-objects/{}/rollout", w.object_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/stacks/{}/rollout", w.stack_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        // Steering a staged rollout: stack A has none under way.
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/rollout/pause", w.stack_a),
            none,
            STEER,
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/rollout/resume", w.stack_a),
            none,
            STEER,
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/rollout/promote", w.stack_a),
            none,
            STEER,
        ),
        case(
            M::POST,
            |w| format!("/api/v1/stacks/{}/rollout/abort", w.stack_a),
            none,
            STEER,
        ),
        case(
            M::GET,
            |_| "/api/v1/fleet".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        // Work orders.
        case(
            M::POST,
            |_| "/api/v1/work-orders".into(),
            |w| {
                Some(
                    json!({ "type": "restart", "target": { "agent_ids": [w.agent_x.0] },
                             "spec": { "kind": "DaemonSet", "namespace": "kube-system", "name": "dns" } }),
                )
            },
            [201, 201, 422, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/work-orders".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/work-orders/{}", w.work_order),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/work-orders/{}", w.work_order),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| {
                format!(
                    "/api/v1/work-orders/{}/runs/{}/claim",
                    w.work_order, w.agent_x.0
                )
            },
            none,
            [403, 403, 403, 200, 404],
        ),
        case(
            M::POST,
            |w| {
                format!(
                    "/api/v1/work-orders/{}/runs/{}/renew",
                    w.work_order, w.agent_x.0
                )
            },
            |_| Some(json!({ "lease_id": Uuid::new_v4() })),
            [403, 403, 403, 409, 404],
        ),
        case(
            M::POST,
            |w| {
                format!(
                    "/api/v1/work-orders/{}/runs/{}/complete",
                    w.work_order, w.agent_x.0
                )
            },
            |_| Some(json!({ "lease_id": Uuid::new_v4(), "outcome": "succeeded" })),
            [403, 403, 403, 409, 404],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/deployment-objects/{}/diagnostics", w.object_a),
            |w| Some(json!({ "agent_id": w.agent_x.0 })),
            [201, 201, 404, 403, 403],
        ),
        // Targeting explanations.
        case(
            M::GET,
            |w| format!("/api/v1/agents/{}/targeting", w.agent_x.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/stacks/{}/targeting", w.stack_a),
            none,
            [200, 200, 404, 403, 403],
        ),
        // Administration.
        case(
            M::POST,
            |_| "/api/v1/admin/config/reload".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/admin/audit-logs".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/metrics".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        // Plugins.
        case(
            M::POST,
            |_| "/api/v1/plugins".into(),
            |_| Some(json!({ "multipart": true })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/plugins".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/plugins/{}", w.plugin.0),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/plugins/{}", w.plugin.0),
            |_| Some(json!({ "description": "d" })),
            [200, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/plugins/{}", w.plugin.0),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/plugins/{}/bindings", w.plugin.0),
            |w| Some(json!({ "scope": "stack", "scope_id": w.stack_a, "mode": "warn" })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/plugins/{}/bindings/{}", w.plugin.0, w.plugin.1),
            |_| Some(json!({ "mode": "enforce" })),
            [200, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/plugins/{}/bindings/{}", w.plugin.0, w.plugin.1),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/plugins/{}/verdicts", w.plugin.0),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/plugins/{}/dry-run", w.plugin.0),
            |w| Some(json!({ "scope": "stack", "scope_id": w.stack_a })),
            [200, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/plugins/modules/{}", w.plugin.2),
            none,
            [200, 403, 403, 200, 200],
        ),
        // Enrollment: tokens are an admin's; enrolling needs a token, never a PAK.
        case(
            M::POST,
            |_| "/api/v1/enrollment-tokens".into(),
            |_| Some(json!({ "uses": 2 })),
            [201, 403, 403, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/enrollment-tokens".into(),
            none,
            [200, 403, 403, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/enrollment-tokens/{}", w.enrollment),
            none,
            [204, 403, 403, 403, 403],
        ),
        case(
            M::POST,
            |_| "/api/v1/enroll".into(),
            |_| Some(json!({ "token": "brokkr_ETnot-a-token", "name": "n", "cluster_name": "c" })),
            [401, 401, 401, 401, 401],
        ),
        // Templates: a generator's own, an admin's all.
        case(
            M::POST,
            |_| "/api/v1/templates".into(),
            |_| {
                let name = format!("t-{}", Uuid::new_v4().simple());
                Some(json!({ "name": name, "template_yaml": "a: 1", "schema_json": {} }))
            },
            [201, 201, 201, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/templates".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/templates/{}", w.template),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PUT,
            |w| format!("/api/v1/templates/{}", w.template),
            |_| Some(json!({ "template_yaml": "a: 2", "schema_json": {} })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/templates/{}", w.template),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/templates/{}/versions", w.template),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/templates/{}/render", w.template),
            |_| Some(json!({ "parameters": {} })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| {
                format!(
                    "/api/v1/stacks/{}/deployment-objects/from-template",
                    w.stack_a
                )
            },
            |w| Some(json!({ "template_id": w.template, "parameters": {} })),
            [201, 201, 404, 403, 403],
        ),
        // Webhooks: an admin manages every subscription, a generator its own.
        case(
            M::GET,
            |_| "/api/v1/webhooks/event-types".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        case(
            M::POST,
            |_| "/api/v1/webhooks".into(),
            |_| {
                let name = format!("h-{}", Uuid::new_v4().simple());
                Some(json!({ "name": name, "url": "http://127.0.0.1:9/h", "event_types": ["*"] }))
            },
            [201, 201, 201, 403, 403],
        ),
        case(
            M::GET,
            |_| "/api/v1/webhooks".into(),
            none,
            [200, 200, 200, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/webhooks/{}", w.webhook.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::PATCH,
            |w| format!("/api/v1/webhooks/{}", w.webhook.0),
            |_| Some(json!({ "enabled": false })),
            [200, 200, 404, 403, 403],
        ),
        case(
            M::DELETE,
            |w| format!("/api/v1/webhooks/{}", w.webhook.0),
            none,
            [204, 204, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/webhooks/{}/rotate-secret", w.webhook.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/webhooks/{}/test", w.webhook.0),
            none,
            [202, 202, 404, 403, 403],
        ),
        case(
            M::GET,
            |w| format!("/api/v1/webhooks/{}/deliveries", w.webhook.0),
            none,
            [200, 200, 404, 403, 403],
        ),
        case(
            M::POST,
            |w| format!("/api/v1/webhook-deliveries/{}/redeliver", w.webhook.1),
            none,
            [202, 202, 404, 403, 403],
        ),
    ]
}
