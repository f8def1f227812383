//! What makes the bucket unreadable: every object is an age file (age-encryption.org/v1, the
//! format of the reference `age` CLI) encrypted to the replica's X25519 key, and every object
//! name is a keyed blake3 hash, so neither content, nor file names, nor blob hashes can be read
//! or guessed from the bucket.
//!
//! The replica's key is one text file in age's identity-file format, so that `age -d -i` takes
//! it as it is. Besides the secret key it carries, on a comment line, the secret that names
//! objects. It lives in two places: `<data>/replica/<name>.key` (owner-only; anyone who can read
//! it can read the data folder anyway) and, encrypted with the owner's passphrase (age's scrypt
//! recipient), as the object `bakch-replica-key.age` in the bucket, which is what a restore on a
//! bare machine starts from.

use std::io::{Read, Write};
use std::iter;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The bucket object holding the passphrase-protected key.
pub const KEY_OBJECT: &str = "bakch-replica-key.age";
/// The comment line carrying the naming secret.
const NAME_KEY_LINE: &str = "# bakch-name-key: ";

/// A replica's secrets.
pub struct Keys {
    identity: age::x25519::Identity,
    recipient: age::x25519::Recipient,
    name_key: [u8; 32],
}

impl Keys {
    pub fn generate() -> Keys {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public();
        Keys { identity, recipient, name_key: rand::random() }
    }

    /// The key file's text: an age identity file with the naming secret as a comment.
    pub fn to_text(&self) -> String {
        format!(
            "# bakch replica key (age identity file: `age -d -i THIS_FILE OBJECT` decrypts any object)\n\
             # public key: {}\n{NAME_KEY_LINE}{}\n{}\n",
            self.recipient,
            hex(&self.name_key),
            self.identity.to_string().expose_secret()
        )
    }

    pub fn parse(text: &str) -> Result<Keys> {
        let bad = |why: &str| Error::bad(format!("not a bakch replica key: {why}"));
        let mut name_key = None;
        let mut identity = None;
        for line in text.lines().map(str::trim) {
            if let Some(h) = line.strip_prefix(NAME_KEY_LINE.trim_end()) {
                name_key = Some(unhex(h.trim()).ok_or_else(|| bad("the name key is not 64 hex digits"))?);
            } else if line.starts_with("AGE-SECRET-KEY-") {
                identity = Some(age::x25519::Identity::from_str(line).map_err(bad)?);
            }
        }
        let identity = identity.ok_or_else(|| bad("no AGE-SECRET-KEY line"))?;
        let name_key = name_key.ok_or_else(|| bad("no name key line"))?;
        Ok(Keys { recipient: identity.to_public(), identity, name_key })
    }

    /// The key file encrypted with a passphrase (what goes into the bucket).
    pub fn seal(&self, passphrase: &str) -> Result<Vec<u8>> {
        let enc = age::Encryptor::with_user_passphrase(SecretString::from(passphrase.to_string()));
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).map_err(io)?;
        w.write_all(self.to_text().as_bytes()).map_err(io)?;
        w.finish().map_err(io)?;
        Ok(out)
    }

    /// The key from the bucket's object and the passphrase.
    pub fn unseal(sealed: &[u8], passphrase: &str) -> Result<Keys> {
        let dec = age::Decryptor::new(sealed).map_err(|e| Error::bad(format!("the replica's key object: {e}")))?;
        let id = age::scrypt::Identity::new(SecretString::from(passphrase.to_string()));
        let mut r = dec
            .decrypt(iter::once(&id as &dyn age::Identity))
            .map_err(|e| Error::bad(format!("the passphrase does not open the replica's key ({e})")))?;
        let mut text = String::new();
        r.read_to_string(&mut text).map_err(io)?;
        Keys::parse(&text)
    }

    /// A writer that encrypts into `out`; `finish()` it to write the last chunk.
    pub fn encrypt_to<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>> {
        let enc = age::Encryptor::with_recipients(iter::once(&self.recipient as &dyn age::Recipient))
            .map_err(|e| Error::internal(format!("cannot encrypt: {e}")))?;
        enc.wrap_output(out).map_err(io)
    }

    /// A reader of the plaintext of an object.
    pub fn decrypt_from<R: Read>(&self, input: R) -> Result<age::stream::StreamReader<R>> {
        let dec = age::Decryptor::new(input).map_err(|e| Error::bad(format!("not an age file: {e}")))?;
        dec.decrypt(iter::once(&self.identity as &dyn age::Identity))
            .map_err(|e| Error::bad(format!("cannot be decrypted with this replica's key: {e}")))
    }

    /// Encrypts a small plaintext whole.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plain.len() + 256);
        let mut w = self.encrypt_to(&mut out)?;
        w.write_all(plain).map_err(io)?;
        w.finish().map_err(io)?;
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decrypt_from(sealed)?.read_to_end(&mut out).map_err(|e| Error::bad(format!("damaged object: {e}")))?;
        Ok(out)
    }

    fn keyed(&self, parts: &[&[u8]]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.name_key);
        for p in parts {
            // Lengths first, so that two different lists never hash the same bytes.
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().to_hex().to_string()
    }

    /// The object holding the blob of this blake3 hash.
    pub fn blob_object(&self, hash: &str) -> String {
        format!("{BLOB_PREFIX}{}", self.keyed(&[b"blob", hash.as_bytes()]))
    }

    /// The object holding one version of a manifest file (its path under the data folder,
    /// its content's hash and its modification time, so a change is a new object).
    pub fn manifest_object(&self, path: &str, content_hash: &str, mtime_ns: i128) -> String {
        format!(
            "{MANIFEST_PREFIX}{}",
            self.keyed(&[b"manifest", path.as_bytes(), content_hash.as_bytes(), &mtime_ns.to_le_bytes()])
        )
    }
}

/// Object names of blobs, and of manifest versions.
pub const BLOB_PREFIX: &str = "b/";
pub const MANIFEST_PREFIX: &str = "m/";

fn io(e: std::io::Error) -> Error {
    Error::internal(format!("encryption failed: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_names_are_keyed() {
        let k = Keys::generate();
        let back = Keys::parse(&k.to_text()).unwrap();
        assert_eq!(back.blob_object("ab"), k.blob_object("ab"));
        assert_ne!(Keys::generate().blob_object("ab"), k.blob_object("ab"));
        assert!(!k.blob_object("abcdef").contains("abcdef"));
        let sealed = k.encrypt(b"hello").unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1"));
        assert_eq!(back.decrypt(&sealed).unwrap(), b"hello");
        assert!(Keys::generate().decrypt(&sealed).is_err());
        assert!(Keys::parse("nothing").is_err());
    }
}
