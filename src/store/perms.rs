//! File modes: bakch's own files are private to its user; what it places in target folders
//! follows the configured `[permissions]` (see [`Modes`]). Every mode is set explicitly after
//! creating, so the process umask can neither widen nor narrow it.

use std::fs::Permissions;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{IoContext, Result};

/// Mode of every folder bakch keeps for itself (data folder, store, recycle bin, logs).
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of every file bakch keeps for itself (database, keys, temp files).
pub const PRIVATE_FILE: u32 = 0o600;
/// What is left of a mode after the umask bakch sets for itself: nothing for group or others.
pub const UMASK: u32 = 0o077;

/// Modes of blobs (and so of the files placed in target folders, which are hard links to them)
/// and of the folders bakch creates in target folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub file: u32,
    pub dir: u32,
}

impl Default for Modes {
    fn default() -> Self {
        Modes { file: 0o400, dir: 0o700 }
    }
}

impl Modes {
    /// Reads `file_mode` and `dir_mode` as octal strings (`"0640"`), with a message for the user.
    pub fn parse(file: &str, dir: &str) -> std::result::Result<Modes, String> {
        let file = octal("file_mode", file)?;
        let dir = octal("dir_mode", dir)?;
        if file & 0o400 == 0 {
            return Err(format!("[permissions] file_mode {file:04o} must let the owner read (0400)"));
        }
        // Placed files are hard links to blobs shared by every backup holding that content.
        if file & 0o222 != 0 {
            return Err(format!(
                "[permissions] file_mode {file:04o} has a write bit: placed files share their content with every \
                 backup that holds it, so they must be read-only (e.g. \"0440\")"
            ));
        }
        if dir & 0o700 != 0o700 {
            return Err(format!("[permissions] dir_mode {dir:04o} must give the owner rwx (0700)"));
        }
        Ok(Modes { file, dir })
    }
}

fn octal(key: &str, text: &str) -> std::result::Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let bad = || {
        format!(
            "[permissions] {key} '{text}' is not a mode: give 3 or 4 octal digits of permission bits, such as \"0640\""
        )
    };
    if !(3..=4).contains(&digits.len()) {
        return Err(bad());
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    if mode > 0o777 {
        return Err(format!(
            "[permissions] {key} '{text}' has setuid, setgid or sticky bits; only permission bits (0777) are allowed"
        ));
    }
    Ok(mode)
}

/// Sets `path`'s mode exactly.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode)).ctx("set mode of", path)
}

/// Creates the empty file `path` with exactly `mode`; fails if the name is taken.
pub fn create_empty_file(path: &Path, mode: u32) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|f| f.set_permissions(Permissions::from_mode(mode)))
        .ctx("create", path)
}

/// Creates the folder `path` (its parent must exist) with exactly `mode`; true if it was new.
/// A folder already there is left as it is.
pub fn create_dir(path: &Path, mode: u32) -> Result<bool> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {
            set_mode(path, mode)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(crate::error::Error::io("create folder", path, e)),
    }
}

/// `create_dir_all` where every folder it creates gets exactly `mode`; folders already there
/// (the user's own) keep theirs.
pub fn create_dir_all(path: &Path, mode: u32) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = path.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.is_dir()).collect();
    for dir in missing.into_iter().rev() {
        create_dir(dir, mode)?;
    }
    Ok(())
}

/// Creates the data folder private to bakch's user, or narrows it if others may enter it:
/// bakch owns it. Returns the mode it had when it was narrowed.
pub fn own_data_dir(path: &Path) -> Result<Option<u32>> {
    create_dir_all(path, PRIVATE_DIR)?;
    let mode = std::fs::metadata(path).ctx("inspect", path)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    set_mode(path, mode & !0o077)?;
    Ok(Some(mode))
}

/// [`own_data_dir`] for a command that does not serve: says what it narrowed on stderr.
pub fn own_data_dir_cli(path: &Path) -> std::result::Result<(), String> {
    if let Some(old) = own_data_dir(path).map_err(|e| e.to_string())? {
        eprintln!(
            "bakch: data folder {} was open to other accounts (mode {old:04o}); narrowed it to owner-only",
            path.display()
        );
    }
    Ok(())
}

/// Gives new files and folders no access for group and others unless set explicitly.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(UMASK));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(Modes::parse("0440", "0750").unwrap(), Modes { file: 0o440, dir: 0o750 });
        assert_eq!(Modes::parse("400", "0o700").unwrap(), Modes::default());
        for (file, dir, says) in [
            ("0644", "0700", "write bit"),
            ("0040", "0700", "owner read"),
            ("0400", "0500", "rwx"),
            ("4400", "0700", "setuid"),
            ("rw-r", "0700", "octal digits"),
            ("0488", "0700", "octal digits"),
            ("40", "0700", "octal digits"),
        ] {
            let err = Modes::parse(file, dir).unwrap_err();
            assert!(err.contains(says), "{file} {dir}: {err}");
        }
    }
}
