//! A thin HTTP client for the broker under test.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

/// The broker's address and a client; every call is bounded in time.
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    client: reqwest::Client,
}

/// One answer: the status and the JSON body (`null` when it is not JSON).
pub type Answer = (u16, Value);

impl Api {
    pub fn new(url: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        Self {
            url: url.to_string(),
            client,
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        pak: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(pak);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str, pak: &str) -> Answer {
        self.send(reqwest::Method::GET, path, pak, None, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A GET's body as text (for `/metrics`).
    pub async fn text(&self, path: &str, pak: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(pak)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.text().await.unwrap_or_default()
    }

    /// A POST that must succeed; returns the body.
    pub async fn created(&self, path: &str, pak: &str, body: Value) -> Value {
        let answer = self.send(reqwest::Method::POST, path, pak, Some(&body), &[]);
        let (status, value) = answer.await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(
            status == 201 || status == 200,
            "POST {path}: {status} {value}"
        );
        value
    }

    /// Every item of a paged list (at most 1,000).
    pub async fn items(&self, path: &str, pak: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, page) = self.get(&format!("{path}{separator}limit=1000"), pak).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }
}

/// What the writers work on: a generator, an agent and a stack targeted at it with one object.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub generator: String,
    pub agent: Uuid,
    pub agent_pak: String,
    pub stack: Uuid,
    pub object: Uuid,
}

pub fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

impl Fleet {
    pub async fn create(api: &Api, admin: &str) -> Self {
        let generator = json!({ "name": "ci", "reach": "true" });
        let generator = api.created("/api/v1/generators", admin, generator).await;
        let generator = generator["pak"].as_str().unwrap().to_string();
        let agent = json!({ "name": "edge-1", "cluster_name": "edge" });
        let agent = api.created("/api/v1/agents", admin, agent).await;
        let agent_pak = agent["pak"].as_str().unwrap().to_string();
        let agent = id(&agent["agent"]);
        let stack = api
            .created("/api/v1/stacks", &generator, json!({ "name": "app" }))
            .await;
        let stack = id(&stack);
        let targets = format!("/api/v1/agents/{agent}/targets");
        api.created(&targets, &generator, json!({ "stack_id": stack }))
            .await;
        let objects = format!("/api/v1/stacks/{stack}/deployment-objects");
        let object = json!({ "yaml_content": config_map("first") });
        let object = id(&api.created(&objects, &generator, object).await);
        Self {
            generator,
            agent,
            agent_pak,
            stack,
            object,
        }
    }
}

pub fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {name}\n")
}
