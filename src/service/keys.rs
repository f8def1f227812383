//! What the API's key checks and `bakch key` need from the database: which target a scoped
//! request reaches, target names for messages, and each key's last use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Service;
use crate::auth::grant::Scope;
use crate::db;
use crate::error::Result;

/// A key's use is written again only when the last write is older than this: last-used is
/// for people, and a database write per request would cost more than the request.
const RECORD_EVERY: Duration = Duration::from_secs(60);

/// In memory: when each key's use was last written, and from where.
#[derive(Default)]
pub struct KeyUse {
    written: Mutex<HashMap<String, (Instant, String)>>,
}

impl Service {
    /// The id of the target the object `id` (of `scope`) belongs to; `None` when there is none.
    pub fn target_of(&self, scope: Scope, id: &str) -> Result<Option<String>> {
        let c = self.conn()?;
        Ok(match scope {
            Scope::Target => db::targets::find(&c, id)?.map(|t| t.id),
            Scope::Backup => db::backups::find(&c, id)?.map(|b| b.target_id),
            Scope::Job => match id.parse::<i64>().ok().map(|n| db::jobs::find(&c, n)).transpose()?.flatten() {
                Some(row) => row.job()?.target_id().map(str::to_string),
                None => None,
            },
        })
    }

    /// One page of the targets among `ids` (an upload key's), in the order of the full list.
    pub fn targets_among(&self, ids: &[String], page: usize) -> Result<Vec<crate::model::target::Target>> {
        let c = self.conn()?;
        let mut found = Vec::new();
        for id in ids {
            found.extend(db::targets::find(&c, id)?);
        }
        found.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.id.cmp(&b.id)));
        let size = self.config.page_size;
        Ok(found.into_iter().skip(page.saturating_sub(1).saturating_mul(size)).take(size).collect())
    }

    /// The names of these targets (the id of one that is gone), for messages.
    pub fn target_names(&self, ids: &[String]) -> Result<Vec<String>> {
        let c = self.conn()?;
        ids.iter().map(|id| Ok(db::targets::find(&c, id)?.map_or_else(|| id.clone(), |t| t.name))).collect()
    }

    /// Notes a key's use; writes it when it was never written or over a minute ago, or when
    /// the address changed.
    pub fn key_used(&self, name: &str, address: &str) -> Result<()> {
        {
            let written = self.key_use.written.lock().map_err(|_| crate::error::Error::internal("key use poisoned"))?;
            if written.get(name).is_some_and(|(at, addr)| at.elapsed() < RECORD_EVERY && addr == address) {
                return Ok(());
            }
        }
        db::keys::record(&*self.conn()?, name, &crate::time::iso(crate::time::now()), address)?;
        let mut written = self.key_use.written.lock().map_err(|_| crate::error::Error::internal("key use poisoned"))?;
        written.insert(name.to_string(), (Instant::now(), address.to_string()));
        Ok(())
    }

    /// Whether `key_used` would write now (so the API spends a blocking hop only then).
    pub fn key_use_due(&self, name: &str, address: &str) -> bool {
        self.key_use
            .written
            .lock()
            .map_or(true, |w| !w.get(name).is_some_and(|(at, addr)| at.elapsed() < RECORD_EVERY && addr == address))
    }

    /// Key name → (last used, address).
    pub fn key_uses(&self) -> Result<HashMap<String, (String, String)>> {
        db::keys::all(&*self.conn()?)
    }
}

/// For `bakch key`, which may run beside a server: the database opened read-only (nothing if
/// there is none yet).
pub fn key_uses_offline(db_path: &Path) -> Result<HashMap<String, (String, String)>> {
    if !db_path.exists() {
        return Ok(HashMap::new());
    }
    db::keys::all(&db::open_read_only(db_path)?)
}

/// For `bakch key add --target`: a target's id and name by id or alias, from the database
/// opened read-only.
pub fn find_target_offline(db_path: &Path, id_or_alias: &str) -> Result<Option<(String, String)>> {
    if !db_path.exists() {
        return Ok(None);
    }
    Ok(db::targets::find(&db::open_read_only(db_path)?, id_or_alias)?.map(|t| (t.id, t.name)))
}
