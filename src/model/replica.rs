//! A replica's summary, as its page, `bakch replica status` and `/metrics` show it, and the
//! envelope a manifest file travels in.

use serde::{Deserialize, Serialize};

/// What bakch knows of one replica (see the `replica_states` table).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReplicaState {
    pub name: String,
    /// Whether `bakch replica init` has given this server the replica's key.
    pub initialised: bool,
    /// ISO 8601 times.
    pub last_success: Option<String>,
    pub last_attempt: Option<String>,
    pub last_error: Option<String>,
    pub last_outcome: Option<String>,
    pub errors: i64,
    /// Objects and bytes in the bucket after the last sync.
    pub objects: i64,
    pub bytes: i64,
    /// What the last sync (or the last failed one) had still to send.
    pub pending_objects: i64,
    pub pending_bytes: i64,
    /// Objects nothing needs, waiting for `delete_delay_days`.
    pub doomed_objects: i64,
    pub last_verify: Option<String>,
    pub verify_outcome: Option<String>,
    pub verify_cursor: String,
    pub failing: bool,
}

/// The `format` of a manifest's envelope.
pub const ENVELOPE_FORMAT: &str = "bakch-replica-file";

/// One version of one manifest file (a target's definition, a backup's manifest, a held
/// entry), with where it lives under the data folder and when it was written there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub format: String,
    pub version: u32,
    /// `manifests/<target>/target.json`, `manifests/<target>/<backup>.json` or `held/<backup>.json`.
    pub path: String,
    /// Modification time in nanoseconds since the epoch: the newest version of a path wins.
    pub mtime_ns: i128,
    /// The file's text.
    pub content: String,
}

impl Envelope {
    /// Whether `path` is one a restore may write: one of the three shapes, no `..`.
    pub fn path_is_safe(path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let id_json = |s: &str| s.strip_suffix(".json").is_some_and(|id| uuid::Uuid::parse_str(id).is_ok());
        match parts.as_slice() {
            ["manifests", t, f] => uuid::Uuid::parse_str(t).is_ok() && (*f == "target.json" || id_json(f)),
            ["held", f] => id_json(f),
            _ => false,
        }
    }
}
