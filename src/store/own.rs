//! The names bakch writes into folders it shares with their owner (target folders, the recycle
//! bin): staging, trash and probe names. Each carries this installation's random token, so
//! start-up recovery removes only its own leftovers, never a user's file that merely looks alike
//! (`.bakch-notes.txt`), nor those of another bakch installation sharing the folder.

use std::path::{Path, PathBuf};

use super::durable;
use crate::error::{Error, Result};

/// `<data>/install_token`: the token, made once at the first start and never changed.
pub const TOKEN_FILE: &str = "install_token";
/// Hex digits of a token (64 random bits).
const TOKEN_LEN: usize = 16;

/// This installation's own names.
#[derive(Debug, Clone)]
pub struct OwnNames {
    /// `.bakch-<token>-`
    prefix: String,
}

/// What one of bakch's own names is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnName<'a> {
    /// A backup being built or moved in, before its rename into place; holds the backup id.
    Staging(&'a str),
    /// Something being removed (renamed first so it vanishes from its place at once).
    Trash,
    /// The empty file that checks a target folder is writable.
    Probe,
}

impl OwnNames {
    /// Reads the token of the installation in `data_dir`, making it at the first start.
    pub fn load_or_create(data_dir: &Path) -> Result<OwnNames> {
        let path = data_dir.join(TOKEN_FILE);
        let token = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = format!("{:016x}", rand::random::<u64>());
                durable::write_file(&path, token.as_bytes(), 0o600)?;
                token
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if token.len() != TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(Error::internal(format!(
                "{} must hold {TOKEN_LEN} lowercase hex digits; it names bakch's own leftovers, so restore it \
                 from a copy of the data folder rather than editing it",
                path.display()
            )));
        }
        Ok(OwnNames::with_token(&token))
    }

    pub fn with_token(token: &str) -> OwnNames {
        OwnNames { prefix: format!(".bakch-{token}-") }
    }

    /// The staging name for building or moving in backup `backup_id` at `dest`: beside it, and
    /// fixed, so a crash can be cleaned up.
    pub fn staging(&self, dest: &Path, backup_id: &str) -> PathBuf {
        parent(dest).join(format!("{}staging-{backup_id}", self.prefix))
    }

    /// A fresh trash name beside `path`.
    pub fn trash(&self, path: &Path) -> PathBuf {
        parent(path).join(format!("{}trash-{}", self.prefix, uuid::Uuid::new_v4().simple()))
    }

    /// A fresh probe name in folder `dir`.
    pub fn probe(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}probe-{}", self.prefix, uuid::Uuid::new_v4().simple()))
    }

    /// What `name` is, if it is exactly one of this installation's own names.
    pub fn parse<'a>(&self, name: &'a str) -> Option<OwnName<'a>> {
        let rest = name.strip_prefix(&self.prefix)?;
        let simple_uuid = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if let Some(id) = rest.strip_prefix("staging-") {
            return uuid::Uuid::parse_str(id).is_ok().then_some(OwnName::Staging(id));
        }
        if rest.strip_prefix("trash-").is_some_and(simple_uuid) {
            return Some(OwnName::Trash);
        }
        if rest.strip_prefix("probe-").is_some_and(simple_uuid) {
            return Some(OwnName::Probe);
        }
        None
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_own_names_are_recognised() {
        let own = OwnNames::with_token("0123456789abcdef");
        let id = "6f1c1d2e-5b2a-4e1f-9a0b-0c1d2e3f4a5b";
        let staging = own.staging(Path::new("/t/b-1"), id);
        assert_eq!(staging, Path::new("/t/.bakch-0123456789abcdef-staging-6f1c1d2e-5b2a-4e1f-9a0b-0c1d2e3f4a5b"));
        let name = |p: PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(own.parse(&name(staging)), Some(OwnName::Staging(id)));
        assert_eq!(own.parse(&name(own.trash(Path::new("/t/x")))), Some(OwnName::Trash));
        assert_eq!(own.parse(&name(own.probe(Path::new("/t")))), Some(OwnName::Probe));
        for foreign in [
            ".bakch-notes.txt",
            ".bakch-data",
            ".bakch-staging-6f1c1d2e-5b2a-4e1f-9a0b-0c1d2e3f4a5b",
            ".bakch-trash-0123",
            ".bakch-0123456789abcdef-notes",
            ".bakch-0123456789abcdef-staging-x",
            ".bakch-0123456789abcdef-trash-",
            ".bakch-fedcba9876543210-probe-0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(own.parse(foreign), None, "{foreign} is not ours");
        }
    }

    #[test]
    fn the_token_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = OwnNames::load_or_create(dir.path()).unwrap();
        let b = OwnNames::load_or_create(dir.path()).unwrap();
        assert_eq!(a.prefix, b.prefix);
        std::fs::write(dir.path().join(TOKEN_FILE), "not a token").unwrap();
        assert!(OwnNames::load_or_create(dir.path()).is_err());
    }
}
