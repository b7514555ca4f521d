//! [`AppState`]: what every handler can reach: the application layer and the HTTP-only
//! throttle of failed authentication.

use std::sync::Arc;

use crate::app::App;
use crate::auth::throttle::Throttle;

/// Shared, cheaply cloned handles.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub throttle: Arc<Throttle>,
}
