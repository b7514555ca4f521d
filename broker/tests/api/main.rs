//! API tests: each starts the real broker on a port-0 listener with a fresh database and talks
//! HTTP to it. Every test runs twice, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod locks;

mod access_matrix;
mod agents;
mod audit;
mod auth;
mod browser;
mod bulk_targets;
mod cli;
mod connections;
mod deployment_objects;
mod enrollment;
mod generators;
mod platform;
mod plugins;
mod receiver;
mod references;
mod replicas;
mod rollouts;
mod secrets;
mod stacks;
mod staged;
mod target_state;
mod targeting;
mod templates;
mod tenancy;
mod tls;
mod ui;
mod ui_changes;
mod webhook_delivery;
mod webhooks;
mod work_orders;
