//! The API key: `apikey.json` `{"key":"bakch-<64 hex>"}` in the data folder, mode 0600.
//! No file means an open API (Backup-chan's rule). The server re-reads the file when it changes,
//! so `bakch newapikey` takes effect without a restart; keys are compared in constant time.
//! It is the admin key named [`NAME`]; the named keys of `keys.json` (see `keys`) sit beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::grant::{Caller, Role};
use super::keys::{self, KeyTable};
use crate::store::durable;
use crate::watched::WatchedFile;

/// The name `apikey.json`'s key goes by in messages and `bakch key list`.
pub const NAME: &str = "apikey.json";

#[derive(Serialize, Deserialize)]
struct KeyFile {
    key: String,
}

/// A fresh key in the only shape the official client accepts.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("bakch-{hex}")
}

/// `bakch newapikey`: writes a new key and returns it; refuses to replace one unless `overwrite`.
pub fn create(path: &Path, overwrite: bool) -> Result<String, String> {
    if path.exists() && !overwrite {
        return Err(format!(
            "{} already exists; pass --overwrite (-o) to replace the key (clients using the old key will be refused)",
            path.display()
        ));
    }
    if let Some(dir) = path.parent() {
        crate::store::perms::own_data_dir_cli(dir)?;
    }
    let key = generate();
    let json = serde_json::to_string(&KeyFile { key: key.clone() }).map_err(|e| e.to_string())?;
    durable::write_file(path, json.as_bytes(), 0o600).map_err(|e| e.to_string())?;
    Ok(key)
}

/// Verdict on a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Allowed(Caller),
    /// No header, or not a Bearer token.
    Unauthorized,
    /// A Bearer token that is no live key.
    Forbidden,
}

/// The current keys (`apikey.json` and `keys.json`), each re-read when its file changes.
pub struct ApiKey {
    file: WatchedFile<String>,
    named: WatchedFile<Arc<KeyTable>>,
}

impl ApiKey {
    /// `path` is `apikey.json`; `keys.json` is beside it.
    pub fn new(path: PathBuf) -> ApiKey {
        let named = keys::path(path.parent().unwrap_or(Path::new(".")));
        ApiKey { file: WatchedFile::new(path), named: WatchedFile::new(named) }
    }

    /// The key, `None` when there is no key file. A file that cannot be read or parsed is an
    /// error: bakch then refuses every request rather than opening up.
    pub fn current(&self) -> Result<Option<String>, String> {
        self.file.get(read_key)
    }

    /// Checks an `Authorization` header value against the keys. With neither file the API is
    /// open; a `keys.json` whose keys are all revoked still closes it.
    pub fn check(&self, header: Option<&str>) -> Result<Access, String> {
        let key = self.current()?;
        let named = self.named.get(keys::read_table)?;
        if key.is_none() && named.is_none() {
            return Ok(Access::Allowed(Caller::open()));
        }
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Ok(Access::Unauthorized);
        };
        let token = token.trim();
        if let Some(key) = key
            && bool::from(token.as_bytes().ct_eq(key.as_bytes()))
        {
            return Ok(Access::Allowed(Caller { name: NAME.into(), role: Role::Admin }));
        }
        match named.as_deref().and_then(|t| t.find(token)) {
            Some(k) => Ok(Access::Allowed(Caller { name: k.name.clone(), role: k.role() })),
            None => Ok(Access::Forbidden),
        }
    }

    /// Whether any key file exists (the API is closed).
    pub fn exists(&self) -> bool {
        self.file.path().exists() || self.named.path().exists()
    }
}

fn read_key(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: KeyFile =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a valid key file: {e}", path.display()))?;
    if file.key.trim().is_empty() {
        return Err(format!("{} holds an empty key", path.display()));
    }
    Ok(file.key.trim().to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn key_shape_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apikey.json");
        let api = ApiKey::new(path.clone());
        assert_eq!(api.check(None).unwrap(), Access::Allowed(Caller::open()));
        let key = create(&path, false).unwrap();
        assert!(key.starts_with("bakch-") && key.len() == 70);
        assert!(key[6..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(create(&path, false).is_err());
        assert_eq!(api.check(None).unwrap(), Access::Unauthorized);
        assert_eq!(api.check(Some("Basic x")).unwrap(), Access::Unauthorized);
        assert_eq!(api.check(Some("Bearer nope")).unwrap(), Access::Forbidden);
        let admin = Caller { name: NAME.into(), role: Role::Admin };
        assert_eq!(api.check(Some(&format!("Bearer {key}"))).unwrap(), Access::Allowed(admin));
        let read = keys::add(&keys::path(dir.path()), "r", keys::RoleName::Read, vec![]).unwrap();
        let reader = Caller { name: "r".into(), role: Role::Read };
        assert_eq!(api.check(Some(&format!("Bearer {read}"))).unwrap(), Access::Allowed(reader));
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
