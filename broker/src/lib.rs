//! The Brokkr broker: REST API, storage on SQLite or PostgreSQL, PAK authentication through a
//! TTL cache, and the commands of the `brokkr-broker` CLI.

pub mod access;
pub mod auth;
pub mod config;
pub mod credentials;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod feed;
pub mod metrics;
pub mod policies;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod state;
pub mod targeting;
