//! [`AppState`]: what every handler can reach: the application layer, and the HTTP-only
//! pieces (the client-address resolver and the throttle of failed authentication).

use std::sync::Arc;

use crate::app::App;
use crate::auth::throttle::Throttle;
use crate::http::client::ClientAddresses;

/// Shared, cheaply cloned handles.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub throttle: Arc<Throttle>,
    pub clients: Arc<ClientAddresses>,
    /// Slots for requests in progress (`broker.max_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}
