//! The web password: set with `bakch passwd`, kept as an argon2 hash in
//! `<data>/webpassword.json` (0600, written atomically) and re-read when the file changes, so a
//! new password takes effect without a restart and ends older sessions.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::store::durable;
use crate::watched::WatchedFile;

/// Shortest password `bakch passwd` accepts.
const MIN_PASSWORD: usize = 8;

pub fn password_path(data_dir: &Path) -> PathBuf {
    data_dir.join("webpassword.json")
}

#[derive(Serialize, Deserialize)]
struct PasswordFile {
    hash: String,
}

/// `bakch passwd`: asks for the password twice on a terminal, else reads one line from stdin.
pub fn passwd(data_dir: &Path) -> Result<(), String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New web password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Once more: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("the password must be at least {MIN_PASSWORD} characters long; nothing was changed"));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash the password: {e}"))?
        .to_string();
    crate::store::perms::own_data_dir_cli(data_dir)?;
    let path = password_path(data_dir);
    let json = serde_json::to_string(&PasswordFile { hash }).map_err(|e| e.to_string())?;
    durable::write_file(&path, json.as_bytes(), 0o600).map_err(|e| e.to_string())?;
    println!("Web password written to {}; sessions logged in with an older password have ended.", path.display());
    Ok(())
}

/// The password file as the server sees it, re-read when it changes.
pub struct Password {
    file: WatchedFile<String>,
}

impl Password {
    pub fn new(data_dir: &Path) -> Password {
        Password { file: WatchedFile::new(password_path(data_dir)) }
    }

    /// The argon2 hash, `None` when no password is set.
    pub fn hash(&self) -> Result<Option<String>, String> {
        self.file.get(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file: PasswordFile = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a valid password file: {e}", path.display()))?;
            PasswordHash::new(&file.hash).map_err(|e| format!("{} holds no valid argon2 hash: {e}", path.display()))?;
            Ok(file.hash)
        })
    }
}

/// Whether `password` matches `hash`; slow on purpose, so call it off the async executor.
pub fn verify(hash: &str, password: &str) -> crate::error::Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| crate::error::Error::internal(e.to_string()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}
