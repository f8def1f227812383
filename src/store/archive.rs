//! Unpacking an uploaded archive into blobs, refusing anything that could escape the backup.
//!
//! Entries stream straight into blobs (never whole in memory). Accepted: regular files and
//! folders; hard links to files seen earlier in the same archive. Refused with a clear error:
//! absolute paths, `..`, links that point outside. Skipped with a log line: symlinks inside the
//! tree, devices and fifos (a backup here is plain files).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::Store;
use super::blob::{Batch, empty_blob};
use super::place::safe_relative;
use crate::config::Limits;
use crate::error::{Error, IoContext, Result};
use crate::model::backup::BackupFile;

/// Archive formats bakch unpacks, known by file name: every compression of tar that Python's
/// `tarfile` reads (as Backup-chan unpacks them), and zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tar,
    TarGz,
    TarBz2,
    TarXz,
    /// The legacy `.lzma` format (LZMA_Alone), which `tarfile`'s `xz` mode also reads.
    TarLzma,
    TarZst,
    Zip,
}

/// File name endings of archives, lower case; the one list for unpacking and for naming.
pub const SUFFIXES: &[(&str, Kind)] = &[
    (".tar.gz", Kind::TarGz),
    (".tgz", Kind::TarGz),
    (".tar.bz2", Kind::TarBz2),
    (".tbz2", Kind::TarBz2),
    (".tbz", Kind::TarBz2),
    (".tar.xz", Kind::TarXz),
    (".txz", Kind::TarXz),
    (".tar.lzma", Kind::TarLzma),
    (".tlz", Kind::TarLzma),
    (".tar.zst", Kind::TarZst),
    (".tar.zstd", Kind::TarZst),
    (".tzst", Kind::TarZst),
    (".tar", Kind::Tar),
    (".zip", Kind::Zip),
];

/// Most memory the `.lzma` decoder may take: its header names the dictionary size, so a
/// hostile archive could otherwise ask for 4 GiB.
const LZMA_MEMORY: u64 = 1 << 30;

/// The archive kind of a file name, if it names one.
pub fn kind_of(name: &str) -> Option<Kind> {
    let n = name.to_ascii_lowercase();
    SUFFIXES.iter().find(|(suffix, _)| n.ends_with(suffix)).map(|(_, kind)| *kind)
}

/// The files of the archive at `path`, each stored as a blob, within the configured limits.
pub fn extract(store: &Store, path: &Path, kind: Kind, limits: &Limits) -> Result<Vec<BackupFile>> {
    let file = File::open(path).ctx("open archive", path)?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut files = Files {
        entries_left: limits.max_archive_entries,
        max_entries: limits.max_archive_entries,
        bytes_left: Rc::new(Cell::new((limits.max_archive_bytes > 0).then_some(limits.max_archive_bytes))),
        ..Files::default()
    };
    let mut batch = Batch::new(store)?;
    match kind {
        Kind::Tar => extract_tar(store, &mut batch, reader, &mut files)?,
        Kind::TarGz => extract_tar(store, &mut batch, flate2::read::MultiGzDecoder::new(reader), &mut files)?,
        Kind::TarBz2 => extract_tar(store, &mut batch, bzip2::read::MultiBzDecoder::new(reader), &mut files)?,
        Kind::TarXz => extract_tar(store, &mut batch, xz2::read::XzDecoder::new_multi_decoder(reader), &mut files)?,
        Kind::TarLzma => {
            let stream = xz2::stream::Stream::new_lzma_decoder(LZMA_MEMORY)
                .map_err(|e| Error::internal(format!("cannot start the lzma decoder: {e}")))?;
            extract_tar(store, &mut batch, xz2::read::XzDecoder::new_stream(reader, stream), &mut files)?
        }
        Kind::TarZst => {
            let decoder = zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| Error::bad(format!("the archive is not valid zstd: {e}")))?;
            extract_tar(store, &mut batch, decoder, &mut files)?
        }
        Kind::Zip => extract_zip(store, &mut batch, path, &mut files)?,
    }
    let files = files.finish()?;
    batch.commit()?;
    Ok(files)
}

/// Files by path; a later entry of the same path replaces an earlier one, as `tar x` does.
/// Also counts what the archive may still bring.
#[derive(Default)]
struct Files {
    by_path: BTreeMap<PathBuf, BackupFile>,
    entries_left: u64,
    max_entries: u64,
    /// Bytes that may still be unpacked (None: no limit); shared with the entry readers.
    bytes_left: Rc<Cell<Option<u64>>>,
}

impl Files {
    fn add(&mut self, path: PathBuf, blob: String, size: u64, mode: u32) {
        let rel = path.to_string_lossy().into_owned();
        self.by_path.insert(path, BackupFile { path: rel, blob, size: size as i64, mode: mode & 0o7777 });
    }

    /// Counts one more entry against `max_archive_entries`.
    fn count_entry(&mut self) -> Result<()> {
        if self.entries_left == 0 {
            return Err(Error::bad(format!(
                "the archive has more than {} entries, this server's limit (max_archive_entries)",
                self.max_entries
            )));
        }
        self.entries_left -= 1;
        Ok(())
    }

    /// Wraps an entry's reader so that it fails once the archive unpacks past the limit.
    fn limited<R: Read>(&self, inner: R) -> Limited<R> {
        Limited { inner, left: self.bytes_left.clone() }
    }
}

/// A reader that stops a decompression bomb: it errors once the shared byte budget is spent.
struct Limited<R> {
    inner: R,
    left: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(left) = self.left.get() {
            let left = left.checked_sub(n as u64).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "the archive unpacks to more than this server's limit (max_archive_bytes)",
                )
            })?;
            self.left.set(Some(left));
        }
        Ok(n)
    }
}

impl Files {
    fn finish(self) -> Result<Vec<BackupFile>> {
        if let Some((file, inside)) = crate::model::backup::file_folder_clash(self.by_path.keys()) {
            return Err(Error::bad(format!(
                "the archive holds '{}' both as a file and as a folder (of '{}')",
                file.display(),
                inside.display()
            )));
        }
        if self.by_path.is_empty() {
            return Err(Error::bad("the archive holds no files"));
        }
        Ok(self.by_path.into_values().collect())
    }
}

fn entry_path(raw: &str) -> Result<PathBuf> {
    // Linux limits: 255 bytes a name, 4096 a path; refuse here rather than fail while placing.
    if raw.len() > 4000 || raw.split('/').any(|part| part.len() > 255) {
        return Err(Error::bad(format!(
            "the archive has a name or path too long to store: '{}…'",
            raw.chars().take(80).collect::<String>()
        )));
    }
    if raw.starts_with('/') {
        return Err(Error::bad(format!("the archive has an absolute path '{raw}'; refusing to unpack it")));
    }
    safe_relative(raw).map_err(|_| Error::bad(format!("the archive has a path that leaves the backup: '{raw}'")))
}

fn corrupt(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        return Error::bad(e.to_string());
    }
    Error::bad(format!("the archive is damaged or not in the format its name says: {e}"))
}

fn extract_tar(store: &Store, batch: &mut Batch, reader: impl Read, files: &mut Files) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        files.count_entry()?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir()
            || matches!(
                kind,
                tar::EntryType::XGlobalHeader
                    | tar::EntryType::XHeader
                    | tar::EntryType::GNULongName
                    | tar::EntryType::GNULongLink
            )
        {
            entry_path_or_root(&raw)?;
            continue;
        }
        let path = entry_path(&raw)?;
        let mode = entry.header().mode().unwrap_or(0o644);
        if kind.is_hard_link() {
            let target =
                entry.link_name().map_err(corrupt)?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
            let target_path = entry_path(&target)?;
            let Some(existing) = files.by_path.get(&target_path).cloned() else {
                return Err(Error::bad(format!(
                    "the archive links '{raw}' to '{target}', which it does not hold earlier"
                )));
            };
            files.add(path, existing.blob, existing.size as u64, mode);
        } else if kind.is_symlink() {
            let target =
                entry.link_name().map_err(corrupt)?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
            check_symlink(&path, &target)?;
            tracing::warn!("archive entry '{raw}' is a symlink to '{target}'; symlinks are not stored");
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let (blob, size) = if entry.header().size().unwrap_or(1) == 0 {
                (empty_blob(store)?, 0) // Many empty files share one blob.
            } else {
                batch.put(&mut files.limited(&mut entry), corrupt)?
            };
            files.add(path, blob, size, mode);
        } else {
            tracing::warn!("archive entry '{raw}' is a device or fifo; skipped");
        }
    }
    Ok(())
}

/// Folder entries may be `./` (the root itself); anything else must stay inside.
fn entry_path_or_root(raw: &str) -> Result<()> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        return Ok(());
    }
    entry_path(raw).map(|_| ())
}

/// A symlink whose target leaves the backup is an attack; refuse the archive.
fn check_symlink(path: &Path, target: &str) -> Result<()> {
    let escapes =
        || Error::bad(format!("the archive has a link '{}' pointing outside the backup ('{target}')", path.display()));
    if target.starts_with('/') {
        return Err(escapes());
    }
    let mut depth = path.components().count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(escapes());
        }
    }
    Ok(())
}

fn extract_zip(store: &Store, batch: &mut Batch, path: &Path, files: &mut Files) -> Result<()> {
    let file = File::open(path).ctx("open archive", path)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Error::bad(format!("the archive is not a valid zip file: {e}")))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::bad(format!("the zip archive is damaged: {e}")))?;
        files.count_entry()?;
        let raw = entry.name().to_string();
        if entry.is_dir() {
            entry_path_or_root(&raw)?;
            continue;
        }
        let path = entry_path(&raw)?;
        if entry.is_symlink() {
            let mut target = String::new();
            entry.read_to_string(&mut target).map_err(corrupt)?;
            check_symlink(&path, &target)?;
            tracing::warn!("archive entry '{raw}' is a symlink to '{target}'; symlinks are not stored");
            continue;
        }
        let mode = entry.unix_mode().unwrap_or(0o644);
        let (blob, size) = if entry.size() == 0 {
            (empty_blob(store)?, 0)
        } else {
            batch.put(&mut files.limited(&mut entry), corrupt)?
        };
        files.add(path, blob, size, mode);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(kind_of("a.TAR.GZ"), Some(Kind::TarGz));
        assert_eq!(kind_of("a.tgz"), Some(Kind::TarGz));
        assert_eq!(kind_of("a.tar.zst"), Some(Kind::TarZst));
        assert_eq!(kind_of("a.tar.bz2"), Some(Kind::TarBz2));
        assert_eq!(kind_of("a.TBZ2"), Some(Kind::TarBz2));
        assert_eq!(kind_of("a.tar.lzma"), Some(Kind::TarLzma));
        assert_eq!(kind_of("a.zip"), Some(Kind::Zip));
        assert_eq!(kind_of("a.txt"), None);
    }

    #[test]
    fn symlinks_may_not_leave_the_tree() {
        assert!(check_symlink(Path::new("a/b"), "../c").is_ok());
        assert!(check_symlink(Path::new("a/b"), "../../c").is_err());
        assert!(check_symlink(Path::new("a"), "/etc/passwd").is_err());
    }
}
