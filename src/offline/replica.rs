//! `bakch replica init|status|restore`: the commands run on the server's shell (init, status)
//! or on a bare machine (restore), never over the network.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{Config, Replica};
use crate::model::held::HeldManifest;
use crate::model::manifest::{BackupManifest, TargetManifest};
use crate::model::replica::Envelope;
use crate::replica::crypt::{KEY_OBJECT, Keys, MANIFEST_PREFIX};
use crate::replica::s3::{Client, Endpoint};
use crate::replica::{self};
use crate::store::{Store, durable, perms};

/// A passphrase needs at least this many characters.
const MIN_PASSPHRASE: usize = 12;

/// Reads a passphrase: twice on a terminal when `confirm`, else one line of standard input.
fn passphrase(prompt: &str, confirm: bool) -> Result<String, String> {
    let p = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).map_err(|e| e.to_string())?;
        if confirm && first != rpassword::prompt_password("Once more: ").map_err(|e| e.to_string())? {
            return Err("the two passphrases differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the passphrase: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if p.chars().count() < MIN_PASSPHRASE {
        return Err(format!("the passphrase must be at least {MIN_PASSPHRASE} characters long"));
    }
    Ok(p)
}

fn find<'a>(config: &'a Config, name: &str) -> Result<&'a Replica, String> {
    config.replicas.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = config.replicas.iter().map(|r| r.name.as_str()).collect();
        format!("no [[replica]] named '{name}' in the config (configured: {})", known.join(", "))
    })
}

/// `bakch replica init NAME`: creates the replica's key and puts it, passphrase-protected, in
/// the bucket; or, when the bucket has one already (a replica made before, e.g. before a
/// restore), takes that one with its passphrase.
pub fn init(config: &Config, name: &str) -> Result<String, String> {
    let r = find(config, name)?;
    if replica::key_path(&config.data_dir, name).exists() {
        return Err(format!(
            "replica '{name}' already has a key on this server ({}); nothing was changed",
            replica::key_path(&config.data_dir, name).display()
        ));
    }
    let client = Client::new(&r.endpoint).map_err(|e| e.to_string())?;
    if let Some(sealed) = client.get(KEY_OBJECT).map_err(|e| e.to_string())? {
        let p = passphrase("The replica already has a key; its passphrase: ", false)?;
        let keys = Keys::unseal(&sealed, &p).map_err(|e| e.to_string())?;
        replica::save_keys(&config.data_dir, name, &keys).map_err(|e| e.to_string())?;
        return Ok(format!(
            "Replica '{name}' joined: its key was opened with the passphrase and saved on this server. \
             The next replica_job sends only what the bucket lacks."
        ));
    }
    let p = passphrase("A passphrase for the replica's key (needed for a restore): ", true)?;
    let keys = Keys::generate();
    let sealed = keys.seal(&p).map_err(|e| e.to_string())?;
    client.put(KEY_OBJECT, &sealed).map_err(|e| e.to_string())?;
    replica::save_keys(&config.data_dir, name, &keys).map_err(|e| e.to_string())?;
    let e = &r.endpoint;
    Ok(format!(
        "Replica '{name}' is ready: its key is in the bucket as {prefix}{KEY_OBJECT}, encrypted with your passphrase, \
         and on this server as {local}.\n\
         \n\
         RECOVERY (shown once; keep it with the passphrase, away from this server):\n\
         \x20 endpoint {endpoint}, region {region}, bucket {bucket}, prefix '{prefix}', path-style {style}\n\
         \x20 an access key that can read the bucket, and the passphrase.\n\
         \x20 On a bare machine with bakch installed:\n\
         \x20   bakch replica restore --endpoint {endpoint} --region {region} --bucket {bucket} --prefix '{prefix}' \\\n\
         \x20     --access-key-id KEY_ID --secret-key-file FILE --to /new/data/folder\n\
         \x20 Without bakch, with the age CLI: `age -d {KEY_OBJECT} > key.txt` (asks the passphrase), then\n\
         \x20 `age -d -i key.txt OBJECT` decrypts any object (each b/ object is one file's content; each m/ object a\n\
         \x20 JSON envelope naming a manifest and holding its text).",
        prefix = e.prefix,
        local = replica::key_path(&config.data_dir, name).display(),
        endpoint = e.endpoint,
        region = e.region,
        bucket = e.bucket,
        style = e.path_style,
    ))
}

/// `bakch replica status`: each replica's summary, from the database.
pub fn status(config: &Config) -> Result<String, String> {
    if config.replicas.is_empty() {
        return Ok("no [[replica]] configured".into());
    }
    let states = crate::service::replica::states_offline(config).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in states {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "never".into());
        out.push(format!(
            "{}: {}\n  last success {}; last attempt {}\n  in the bucket: {} object(s), {} byte(s); pending {} object(s), \
             {} byte(s); {} unneeded waiting for the delete delay\n  last outcome: {}\n  last error: {}\n  last \
             verification {}: {}",
            s.name,
            if !s.initialised {
                "NOT INITIALISED (run `bakch replica init NAME`)"
            } else if s.failing {
                "FAILING"
            } else {
                "ok"
            },
            show(&s.last_success),
            show(&s.last_attempt),
            s.objects,
            s.bytes,
            s.pending_objects,
            s.pending_bytes,
            s.doomed_objects,
            show(&s.last_outcome),
            s.last_error.clone().unwrap_or_else(|| "none".into()),
            show(&s.last_verify),
            show(&s.verify_outcome),
        ));
    }
    Ok(out.join("\n"))
}

/// What `bakch replica restore` was asked.
pub struct RestoreArgs {
    pub endpoint: Endpoint,
    pub to: PathBuf,
    /// Targets go under this folder (their old absolute path below it) instead of where they were.
    pub root: Option<PathBuf>,
    pub target: Option<String>,
    pub backup: Option<String>,
    pub concurrency: usize,
}

/// `bakch replica restore`: fetches the newest version of every definition, manifest and held
/// entry, the blobs they name, rebuilds the database and places every backup.
pub fn restore(args: &RestoreArgs) -> Result<String, String> {
    std::fs::create_dir_all(&args.to).map_err(|e| format!("cannot create {}: {e}", args.to.display()))?;
    let to = std::path::absolute(&args.to).map_err(|e| e.to_string())?;
    let busy = ["bakch.sqlite3", "manifests", "held", "store"].iter().any(|n| to.join(n).exists());
    if busy {
        return Err(format!(
            "{} already holds a bakch data folder; restore into an empty folder (nothing was changed)",
            to.display()
        ));
    }
    let _lock = super::lock(&to)?;
    let client = Client::new(&args.endpoint).map_err(|e| e.to_string())?;
    let sealed = client.get(KEY_OBJECT).map_err(|e| e.to_string())?.ok_or_else(|| {
        format!(
            "the bucket holds no {}{KEY_OBJECT}: not a bakch replica (check bucket and prefix)",
            args.endpoint.prefix
        )
    })?;
    let p = passphrase("The replica's passphrase: ", false)?;
    let keys = Keys::unseal(&sealed, &p).map_err(|e| e.to_string())?;

    // Every version of every file; the newest of each path wins.
    let objects = client.list(MANIFEST_PREFIX).map_err(|e| e.to_string())?;
    let bar = super::progress(objects.len() as u64, "fetching manifests");
    let mut newest: BTreeMap<String, Envelope> = BTreeMap::new();
    let mut problems = Vec::new();
    for o in &objects {
        bar.inc(1);
        match replica::fetch_envelope(&client, &keys, &o.name) {
            Ok(Some(env)) if Envelope::path_is_safe(&env.path) => {
                if newest.get(&env.path).is_none_or(|old| old.mtime_ns < env.mtime_ns) {
                    newest.insert(env.path.clone(), env);
                }
            }
            Ok(Some(env)) => problems.push(format!("object {} names an unusable path '{}'; skipped", o.name, env.path)),
            Ok(None) => {}
            Err(e) => problems.push(format!("{e}; skipped")),
        }
    }
    bar.finish_and_clear();
    let chosen = choose(newest, args, &mut problems)?;

    // The files, then the blobs they name.
    let store = Store::open(&to, perms::Modes::default()).map_err(|e| e.to_string())?;
    let mut blobs: BTreeSet<(String, i64)> = BTreeSet::new();
    let (mut targets, mut backups, mut held) = (0, 0, 0);
    for env in chosen.values() {
        let content = relocate(env, args.root.as_deref())?;
        if env.path.starts_with("held/") {
            let h = HeldManifest::parse(&content).map_err(|e| format!("{}: {e}", env.path))?;
            blobs.extend(h.backup.files.iter().map(|f| (f.blob.clone(), f.size)));
            held += 1;
        } else if env.path.ends_with("/target.json") {
            targets += 1;
        } else {
            let m = BackupManifest::parse(&content).map_err(|e| format!("{}: {e}", env.path))?;
            blobs.extend(m.files.iter().map(|f| (f.blob.clone(), f.size)));
            backups += 1;
        }
        let path = to.join(&env.path);
        if let Some(parent) = path.parent() {
            perms::create_dir_all(parent, perms::PRIVATE_DIR).map_err(|e| e.to_string())?;
        }
        durable::write_file(&path, content.as_bytes(), perms::PRIVATE_FILE).map_err(|e| e.to_string())?;
        if content == env.content {
            // The same version's object name, so that syncing from here sends nothing again.
            set_mtime(&path, env.mtime_ns);
        }
    }
    if blobs.iter().any(|(_, size)| *size == 0) {
        // Empty files need no download, but their (empty) blob must be in the store.
        crate::store::blob::empty_blob(&store).map_err(|e| e.to_string())?;
    }
    let needed: Vec<(String, i64)> = blobs.into_iter().filter(|(_, size)| *size > 0).collect();
    let total_bytes: i64 = needed.iter().map(|b| b.1).sum();
    let bar = super::progress(needed.len() as u64, "fetching content");
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.concurrency.clamp(1, 64) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((hash, _)) = needed.get(i) else { break };
                    let outcome = replica::fetch_blob(&client, &keys, &store, hash).and_then(|tmp| match tmp {
                        Some(tmp) => store.replace_blob(hash, &tmp).map(|_| ()),
                        None => Err(crate::error::Error::not_found(format!("the replica holds no blob {hash}"))),
                    });
                    if let Err(e) = outcome {
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    problems.extend(failures.into_inner().unwrap_or_else(|e| e.into_inner()));
    drop(_lock);

    // The database from the manifests, then every backup placed in its folder.
    let global = crate::cli::GlobalArgs { data_dir: Some(to.clone()), config: None };
    let config = Config::load(&global, &crate::cli::ServeArgs::default())?;
    let report = super::rebuild::run(&config)?;
    problems.extend(report.problems.iter().filter(|p| !p.contains("bakch rebuilds it from the store")).cloned());
    {
        let _lock = super::lock(&to)?;
        let service = crate::service::Service::open(config).map_err(|e| e.to_string())?;
        service.recover().map_err(|e| format!("placing the backups failed: {e}"))?;
    }
    let mut out = format!(
        "Restored into {}: {targets} target(s), {backups} backup(s), {held} held backup(s), {} blob(s) ({} bytes).",
        to.display(),
        needed.len(),
        total_bytes
    );
    for p in &problems {
        out.push_str(&format!("\nproblem: {p}"));
    }
    if !problems.is_empty() {
        return Err(out);
    }
    out.push_str(&format!(
        "\nNext: copy your config.toml (with its [[replica]]) into {}, run `bakch replica init NAME` to take the \
         replica's key again (same passphrase), then start bakch.",
        to.display()
    ));
    Ok(out)
}

/// Narrows to `--target`/`--backup`, and leaves out a backup's manifest when a held entry
/// written after it says it was deleted (or the held entry, when the backup came back after).
fn choose(
    newest: BTreeMap<String, Envelope>,
    args: &RestoreArgs,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, Envelope>, String> {
    let mut held_of: BTreeMap<String, (String, i128)> = BTreeMap::new();
    for env in newest.values().filter(|e| e.path.starts_with("held/")) {
        match HeldManifest::parse(&env.content) {
            Ok(h) => {
                held_of.insert(h.backup.backup_id.clone(), (h.backup.target_id.clone(), env.mtime_ns));
            }
            Err(e) => problems.push(format!("{}: {e}", env.path)),
        }
    }
    let mut out = BTreeMap::new();
    for (path, env) in newest {
        let parts: Vec<&str> = path.split('/').collect();
        let (target_id, backup_id) = match parts.as_slice() {
            ["manifests", t, "target.json"] => (t.to_string(), None),
            ["manifests", t, f] => (t.to_string(), f.strip_suffix(".json").map(str::to_string)),
            ["held", f] => {
                let id = f.strip_suffix(".json").unwrap_or(f).to_string();
                (held_of.get(&id).map(|h| h.0.clone()).unwrap_or_default(), Some(id))
            }
            _ => continue,
        };
        if args.target.as_ref().is_some_and(|t| *t != target_id) {
            continue;
        }
        if let Some(wanted) = &args.backup
            && backup_id.as_ref().is_some_and(|b| b != wanted)
        {
            continue;
        }
        if let (Some(b), false) = (&backup_id, path.starts_with("held/"))
            && held_of.get(b).is_some_and(|h| h.1 >= env.mtime_ns)
        {
            continue; // Deleted after this version: the held entry stands for it.
        }
        out.insert(path, env);
    }
    // A held entry whose backup is listed again (restored after the deletion) is left out.
    let listed: BTreeSet<String> = out
        .keys()
        .filter(|p| p.starts_with("manifests/") && !p.ends_with("/target.json"))
        .filter_map(|p| p.rsplit('/').next().and_then(|f| f.strip_suffix(".json")).map(str::to_string))
        .collect();
    out.retain(|p, _| {
        !p.strip_prefix("held/").and_then(|f| f.strip_suffix(".json")).is_some_and(|id| listed.contains(id))
    });
    if out.is_empty() {
        return Err("nothing in the replica matches what was asked (check --target / --backup)".into());
    }
    Ok(out)
}

/// The file's text, its target's folder moved under `root` when one is given.
fn relocate(env: &Envelope, root: Option<&Path>) -> Result<String, String> {
    let Some(root) = root else { return Ok(env.content.clone()) };
    let moved = |location: &str| root.join(location.trim_start_matches('/')).to_string_lossy().into_owned();
    let bad = |e: crate::error::Error| format!("{}: {e}", env.path);
    if env.path.ends_with("/target.json") {
        let mut m = TargetManifest::parse(&env.content).map_err(bad)?;
        m.target.location = moved(&m.target.location);
        m.to_json().map_err(bad)
    } else if env.path.starts_with("held/") {
        let mut h = HeldManifest::parse(&env.content).map_err(bad)?;
        h.target.target.location = moved(&h.target.target.location);
        h.to_json().map_err(bad)
    } else {
        Ok(env.content.clone())
    }
}

fn set_mtime(path: &Path, mtime_ns: i128) {
    let Ok(ns) = u64::try_from(mtime_ns) else { return };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(at);
    }
}
