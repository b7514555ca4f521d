//! The Brokkr broker: REST API, storage on SQLite or PostgreSQL, PAK authentication through a
//! TTL cache, and the commands of the `brokkr-broker` CLI.
//!
//! Layers, from the outside in: `routes` and `http` (HTTP only) call `app` (one function per
//! use case: row rules, one transaction, audit, announcements), which uses `db` (SQL),
//! `targeting` (planning and the in-memory hub), `auth` and `domain` (pure rules). `webhooks`
//! is a background worker beside `routes`: it calls `app` to fan out, claim and record
//! deliveries, and sends them over HTTP.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod state;
pub mod targeting;
pub mod ui;
pub mod webhooks;
