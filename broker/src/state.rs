//! [`AppState`]: what every handler can reach.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::db::Db;
use crate::targeting::Targeting;

/// Shared, cheaply cloned handles.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub auth: Authenticator,
    pub settings: Arc<Settings>,
    pub targeting: Arc<Targeting>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub policies: Arc<crate::policies::Policies>,
    pub throttle: Arc<crate::auth::throttle::Throttle>,
}
