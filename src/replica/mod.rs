//! Encrypted replicas on S3-compatible storage: the bucket client ([`s3`]), the encryption and
//! object naming ([`crypt`]), and the moves of bytes between the data folder and a bucket that
//! the service's sync, verification and healing, and the offline restore, are made of. Knows
//! files and objects, never database rows.

pub mod crypt;
pub mod s3;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crypt::Keys;
use s3::Client;

use crate::error::{Error, IoContext, Result};
use crate::model::replica::{ENVELOPE_FORMAT, Envelope};
use crate::store::{Store, durable, perms};

/// `<data>/replica/<name>.key`: the replica's key on this server.
pub fn key_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("replica").join(format!("{name}.key"))
}

/// The replica's key on this server, if `bakch replica init` gave it one.
pub fn load_keys(data_dir: &Path, name: &str) -> Result<Option<Keys>> {
    let path = key_path(data_dir, name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Keys::parse(&text).map(Some).map_err(|e| Error::bad(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Writes the key file (owner-only), refusing to replace another key.
pub fn save_keys(data_dir: &Path, name: &str, keys: &Keys) -> Result<()> {
    let path = key_path(data_dir, name);
    if let Some(parent) = path.parent() {
        perms::create_dir_all(parent, perms::PRIVATE_DIR)?;
    }
    durable::write_file(&path, keys.to_text().as_bytes(), perms::PRIVATE_FILE)
}

/// One thing a replica must hold.
#[derive(Debug, Clone)]
pub enum Item {
    /// A blob of the store, by its blake3 hash.
    Blob { hash: String, size: u64 },
    /// One version of a manifest file (see [`Envelope`]).
    File { path: String, mtime_ns: i128, content: String },
}

/// An item with its object name.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub object: String,
    pub item: Item,
}

impl Wanted {
    /// Plaintext bytes it carries (what is pending, as the page shows it).
    pub fn size(&self) -> u64 {
        match &self.item {
            Item::Blob { size, .. } => *size,
            Item::File { content, .. } => content.len() as u64,
        }
    }
}

/// Everything the replica must hold for a restore to rebuild this data folder: every target
/// definition, backup manifest and held entry as it is now, and every blob they name.
pub fn wanted(store: &Store, keys: &Keys) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    let mut blobs = std::collections::BTreeMap::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for found in store.all_manifests()? {
        let dir = store.manifests.join(&found.target_id);
        if found.target.is_some() {
            files.push(dir.join("target.json"));
        }
        for path in found.backups {
            if let Ok(m) = store.read_found_manifest(&path) {
                for f in &m.files {
                    blobs.insert(f.blob.clone(), f.size.max(0) as u64);
                }
                files.push(path);
            }
        }
    }
    for (path, held) in store.all_held()? {
        if let Ok(h) = held {
            for f in &h.backup.files {
                blobs.insert(f.blob.clone(), f.size.max(0) as u64);
            }
            files.push(path);
        }
    }
    let data_dir = store.manifests.parent().unwrap_or(Path::new("/"));
    for path in files {
        let Ok(rel) = path.strip_prefix(data_dir) else { continue };
        let rel = rel.to_string_lossy().into_owned();
        let content = match std::fs::read_to_string(&path) {
            Ok(c) => c,
            // Removed since it was listed (a deletion meanwhile): the next sync sees that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let mtime_ns = std::fs::metadata(&path)
            .ctx("inspect", &path)?
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        let object = keys.manifest_object(&rel, blake3::hash(content.as_bytes()).to_hex().as_str(), mtime_ns);
        out.push(Wanted { object, item: Item::File { path: rel, mtime_ns, content } });
    }
    for (hash, size) in blobs {
        out.push(Wanted { object: keys.blob_object(&hash), item: Item::Blob { hash, size } });
    }
    Ok(out)
}

/// Encrypts and uploads one item; returns the bytes sent.
pub fn upload(client: &Client, keys: &Keys, store: &Store, w: &Wanted, part_size: usize) -> Result<u64> {
    match &w.item {
        Item::File { path, mtime_ns, content } => {
            let envelope = Envelope {
                format: ENVELOPE_FORMAT.into(),
                version: 1,
                path: path.clone(),
                mtime_ns: *mtime_ns,
                content: content.clone(),
            };
            let json = serde_json::to_vec(&envelope)
                .map_err(|e| Error::internal(format!("cannot write an envelope for {path}: {e}")))?;
            let sealed = keys.encrypt(&json)?;
            client.put(&w.object, &sealed)?;
            Ok(sealed.len() as u64)
        }
        Item::Blob { hash, .. } => {
            let path = store.blob_path(hash);
            let mut file = std::fs::File::open(&path).ctx("open blob", &path)?;
            let sink = Parts { client, object: &w.object, part_size, buf: Vec::new(), upload: None, sent: 0 };
            let mut enc = keys.encrypt_to(sink)?;
            let copied = std::io::copy(&mut file, &mut enc);
            let finished = copied.and_then(|_| enc.finish());
            match finished {
                Ok(sink) => sink.finish(),
                Err(e) => Err(Error::internal(format!("uploading blob {hash}: {e}"))),
            }
        }
    }
}

/// Where encrypted bytes go: one PUT for a small object, a multipart upload of `part_size`
/// parts for a large one (each part held in memory, so a retry can send it again).
struct Parts<'a> {
    client: &'a Client,
    object: &'a str,
    part_size: usize,
    buf: Vec<u8>,
    /// (upload id, ETags of the parts sent).
    upload: Option<(String, Vec<String>)>,
    sent: u64,
}

impl Parts<'_> {
    fn send_part(&mut self) -> Result<()> {
        if self.upload.is_none() {
            self.upload = Some((self.client.start_multipart(self.object)?, Vec::new()));
        }
        let Some((id, etags)) = &mut self.upload else { return Err(Error::internal("no multipart upload")) };
        let number = u16::try_from(etags.len() + 1)
            .map_err(|_| Error::internal(format!("{} needs more than 65535 parts", self.object)))?;
        match self.client.put_part(self.object, id, number, &self.buf) {
            Ok(etag) => etags.push(etag),
            Err(e) => {
                self.client.abort_multipart(self.object, id);
                return Err(e);
            }
        }
        self.sent += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        if self.upload.is_none() {
            self.client.put(self.object, &self.buf)?;
            return Ok(self.buf.len() as u64);
        }
        if !self.buf.is_empty() {
            self.send_part()?;
        }
        let Some((id, etags)) = &self.upload else { return Err(Error::internal("no multipart upload")) };
        if let Err(e) = self.client.finish_multipart(self.object, id, etags) {
            self.client.abort_multipart(self.object, id);
            return Err(e);
        }
        Ok(self.sent)
    }
}

impl Write for Parts<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.part_size {
            self.send_part().map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Downloads a blob into a temp file of the store, decrypting and checking its hash; the temp
/// file's path when the replica holds it intact, `None` when it holds nothing under that name.
/// A wrong or undecryptable object is an error.
pub fn fetch_blob(client: &Client, keys: &Keys, store: &Store, hash: &str) -> Result<Option<PathBuf>> {
    let tmp = store.tmp.join(format!("replica-{}", uuid::Uuid::new_v4().simple()));
    let found = client.get_into(&keys.blob_object(hash), |body| {
        let mut out = std::fs::File::create(&tmp)?;
        let mut plain = keys.decrypt_from(body).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut hasher = blake3::Hasher::new();
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = plain.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            out.write_all(&chunk[..n])?;
        }
        out.sync_all()?;
        if hasher.finalize().to_hex().as_str() != hash {
            return Err(std::io::Error::other("its content does not match its hash"));
        }
        Ok(())
    });
    match found {
        Ok(true) => Ok(Some(tmp)),
        Ok(false) => Ok(None),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(Error::internal(format!("blob {hash} from the replica: {e}")))
        }
    }
}

/// Reads one manifest object back (for verification and restore).
pub fn fetch_envelope(client: &Client, keys: &Keys, object: &str) -> Result<Option<Envelope>> {
    let Some(sealed) = client.get(object)? else { return Ok(None) };
    let plain = keys.decrypt(&sealed)?;
    let env: Envelope = serde_json::from_slice(&plain)
        .map_err(|e| Error::bad(format!("object {object} is not a bakch replica file: {e}")))?;
    if env.format != ENVELOPE_FORMAT || env.version != 1 {
        return Err(Error::bad(format!("object {object} has format {} v{}", env.format, env.version)));
    }
    Ok(Some(env))
}
