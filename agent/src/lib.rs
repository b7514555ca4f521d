//! The Brokkr agent: pulls its target state from the broker, applies it to its cluster with
//! server-side apply, prunes what is no longer desired, reports events and health, and keeps
//! enforcing its last state when the broker is out of reach; carries out the work orders sent
//! to it.

pub mod backoff;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod health;
pub mod identity;
pub mod metrics;
pub mod objects;
pub mod policy;
pub mod reconcile;
pub mod run;
pub mod server;
pub mod state;
pub mod work;
