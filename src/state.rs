//! What every request handler shares.

use std::sync::Arc;

use crate::auth::apikey::ApiKey;
use crate::auth::session::Sessions;
use crate::jobs::scheduler::Scheduler;
use crate::service::Service;

pub struct AppState {
    pub service: Arc<Service>,
    pub scheduler: Arc<Scheduler>,
    pub apikey: ApiKey,
    /// Web UI: password file, session key, login throttle.
    pub sessions: Sessions,
}
