//! Named keys: `<data>/keys.json` (mode 0600), the one source of truth for who holds which key.
//!
//! The file, not the database, holds them: `bakch rebuild-db` builds the database again from the
//! manifests, and a key must outlive that (a lost upload key would stop every client). Only the
//! last use of each key, which nothing depends on, lives in the database. The server stats the
//! file on every request (as it does `apikey.json`), so a key added or revoked by the command
//! line or the web UI counts from the next request on. Revoked keys stay in the file, marked, so
//! that revoking the last key never turns a closed API into an open one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::grant::Role;
use crate::store::durable;

/// The file's name in the data folder.
pub const FILE: &str = "keys.json";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// One key as stored: its hash, never the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    pub role: RoleName,
    /// Target ids an upload key may reach; empty for the other roles.
    #[serde(default)]
    pub targets: Vec<String>,
    /// blake3 of the key, hex.
    pub hash: String,
    pub created: String,
    #[serde(default)]
    pub revoked: Option<String>,
}

impl KeyRecord {
    pub fn role(&self) -> Role {
        match self.role {
            RoleName::Admin => Role::Admin,
            RoleName::Read => Role::Read,
            RoleName::Upload => Role::Upload(self.targets.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Read,
    Upload,
}

impl RoleName {
    pub fn parse(s: &str) -> Option<RoleName> {
        match s {
            "admin" => Some(RoleName::Admin),
            "read" => Some(RoleName::Read),
            "upload" => Some(RoleName::Upload),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Admin => "admin",
            RoleName::Read => "read",
            RoleName::Upload => "upload",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<KeyRecord>,
}

/// The live keys by hash, as the server looks them up.
#[derive(Debug, Default)]
pub struct KeyTable {
    by_hash: HashMap<String, KeyRecord>,
}

impl KeyTable {
    /// The live key whose hash this token has. A plain hash is enough here (no salt, no slow
    /// hash): the keys are 256 random bits, so there is nothing to guess or precompute, and a
    /// lookup by hash leaks nothing an attacker could use to build a key.
    pub fn find(&self, token: &str) -> Option<&KeyRecord> {
        self.by_hash.get(&hash(token))
    }
}

pub fn hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// Reads the file for the server's watched copy: live keys only.
pub fn read_table(path: &Path) -> Result<Arc<KeyTable>, String> {
    let file = read(path)?;
    let by_hash = file.keys.into_iter().filter(|k| k.revoked.is_none()).map(|k| (k.hash.clone(), k)).collect();
    Ok(Arc::new(KeyTable { by_hash }))
}

fn read(path: &Path) -> Result<KeysFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a valid keys file: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Every key in the file, revoked ones included, oldest first.
pub fn list(path: &Path) -> Result<Vec<KeyRecord>, String> {
    Ok(read(path)?.keys)
}

/// Runs a read-change-write of the file under an exclusive lock, so that the command line and
/// the web UI changing keys at once cannot lose each other's change.
fn change<T>(path: &Path, f: impl FnOnce(&mut KeysFile) -> Result<T, String>) -> Result<T, String> {
    use std::os::unix::fs::OpenOptionsExt;

    use rustix::fs::{FlockOperation, flock};
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    flock(&lock, FlockOperation::LockExclusive).map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let mut file = read(path)?;
    let out = f(&mut file)?;
    let json = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    durable::write_file(path, &json, 0o600).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Adds a key and returns it (the only time it exists outside the client). `targets` are ids,
/// already checked by the caller.
pub fn add(path: &Path, name: &str, role: RoleName, targets: Vec<String>) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err("a key name is 1 to 64 printable characters".into());
    }
    if name == super::apikey::NAME {
        return Err(format!("'{name}' is the name of the key in apikey.json"));
    }
    if (role == RoleName::Upload) == targets.is_empty() {
        return Err("an upload key needs at least one --target, and only an upload key takes targets".into());
    }
    let key = super::apikey::generate();
    change(path, |file| {
        if file.keys.iter().any(|k| k.name == name && k.revoked.is_none()) {
            return Err(format!("a key named '{name}' exists; revoke it first or choose another name"));
        }
        file.keys.push(KeyRecord {
            name: name.to_string(),
            role,
            targets,
            hash: hash(&key),
            created: crate::time::iso(crate::time::now()),
            revoked: None,
        });
        Ok(())
    })?;
    Ok(key)
}

/// Revokes the live key called `name`.
pub fn revoke(path: &Path, name: &str) -> Result<(), String> {
    change(path, |file| {
        let key = file.keys.iter_mut().find(|k| k.name == name && k.revoked.is_none());
        let Some(key) = key else { return Err(format!("there is no live key named '{name}'")) };
        key.revoked = Some(crate::time::iso(crate::time::now()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_find_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        let key = add(&path, "laptop", RoleName::Upload, vec!["t1".into()]).unwrap();
        assert!(key.starts_with("bakch-") && key.len() == 70);
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&key), "the key itself is stored");
        assert!(add(&path, "laptop", RoleName::Read, vec![]).is_err(), "a live name is unique");
        assert!(add(&path, "x", RoleName::Upload, vec![]).is_err(), "an upload key needs a target");
        assert!(add(&path, "y", RoleName::Read, vec!["t1".into()]).is_err(), "only upload keys take targets");
        let table = read_table(&path).unwrap();
        assert_eq!(table.find(&key).map(|k| k.role()), Some(Role::Upload(vec!["t1".into()])));
        revoke(&path, "laptop").unwrap();
        assert!(read_table(&path).unwrap().find(&key).is_none());
        assert!(revoke(&path, "laptop").is_err());
        assert_eq!(list(&path).unwrap().len(), 1, "a revoked key stays listed");
    }
}
