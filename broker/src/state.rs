//! [`AppState`]: what every handler can reach: the application layer, and the HTTP-only
//! pieces (the client-address resolver and the throttle of failed authentication).

use std::sync::Arc;

use crate::app::App;
use crate::auth::throttle::Throttle;
use crate::http::client::ClientAddresses;

/// Shared handles behind one pointer: axum clones the state for every request and every
/// middleware, so a clone is one reference count, not one per handle inside [`App`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<Handles>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Handles {
    pub app: App,
    pub throttle: Arc<Throttle>,
    pub clients: Arc<ClientAddresses>,
    /// Slots for requests in progress (`broker.max_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}
