//! Command line: `serve` (the default), `newapikey`, `passwd`, `rebuild-db`, `check`, `key`, `held`.
//!
//! Every serve flag is optional and also read from a `BAKCH_*` variable; a value given here
//! overrides the config file (see `config.rs` for the order).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bakch", version, about = "A self-hosted backup appliance that speaks the Backup-chan API")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Data folder: database, store, recycle bin, logs, API key [default: ./data]
    #[arg(long, env = "BAKCH_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML config file [default: <data-dir>/config.toml when present]
    #[arg(long, env = "BAKCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default when no command is given)
    Serve(ServeArgs),
    /// Create the API key file (apikey.json) and print the key
    Newapikey(NewApiKeyArgs),
    /// Set the web UI password (asks twice; reads one line from stdin when it is not a terminal)
    Passwd,
    /// With bakch stopped: build a new database from the manifests (the old one is kept aside)
    RebuildDb,
    /// With bakch stopped: report what disagrees between database, manifests, store and target
    /// folders; exit status 1 when anything was found
    Check(CheckArgs),
    /// Named API keys with roles (kept in keys.json): add, list, revoke
    #[command(subcommand)]
    Key(KeyCommand),
    /// Deleted backups whose content is still held: list, restore, purge (ends holds early)
    #[command(subcommand)]
    Held(HeldCommand),
    /// Send a test notification to every [[notify]] destination now, and say how each went
    NotifyTest,
    /// Back up folders to a bakch server, sending only what changed since the last push
    Push(PushArgs),
    /// Encrypted replicas on S3-compatible storage: init, status, restore
    #[command(subcommand)]
    Replica(ReplicaCommand),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The server's address, e.g. http://nas:5050
    #[arg(long, env = "BAKCH_SERVER")]
    pub server: String,
    /// A file holding the API key: `{"key": "..."}` or the key alone
    #[arg(long, env = "BAKCH_KEY_FILE")]
    pub key_file: PathBuf,
    /// The target (id or alias); a multi-file target
    #[arg(long)]
    pub target: String,
    /// Folders (or files) to back up; one folder's contents go at the top of the backup,
    /// several each keep their own name
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Leave out what matches this gitignore-style pattern (relative to each folder); repeat
    #[arg(long, short = 'e')]
    pub exclude: Vec<String>,
    /// Read exclude patterns from this file, one a line (gitignore syntax); repeat
    #[arg(long)]
    pub exclude_from: Vec<PathBuf>,
    /// Do not cross into other filesystems (mounts inside the folders)
    #[arg(long, short = 'x')]
    pub one_file_system: bool,
    /// List the snapshot and say what would be sent, then abandon it: nothing is sent or kept
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Mark the backup as manual (default: automatic, for timers)
    #[arg(long)]
    pub manual: bool,
    /// The cache of file hashes [default: $XDG_CACHE_HOME/bakch or ~/.cache/bakch]
    #[arg(long, env = "BAKCH_PUSH_CACHE")]
    pub cache_dir: Option<PathBuf>,
    /// Percent of unchanged files (by the cache) to read and hash again anyway, as a check
    #[arg(long, default_value_t = 1.0)]
    pub rehash_percent: f64,
    /// No progress output (the summary is still printed)
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Also print the summary as one JSON line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Create the replica's key (or take the one its bucket holds) and store it passphrase-protected in the bucket
    Init {
        /// The [[replica]] entry's name
        name: String,
    },
    /// Each replica's last sync, what is pending, the last error and the last verification
    Status,
    /// Rebuild a data folder from a replica (on a bare machine): definitions, manifests, content, database,
    /// and every backup placed in its target's folder
    Restore(Box<ReplicaRestoreArgs>),
}

#[derive(Debug, Args)]
pub struct ReplicaRestoreArgs {
    /// Take the bucket's settings from this [[replica]] entry of the config instead of the flags
    #[arg(long)]
    pub replica: Option<String>,
    /// The S3 endpoint, e.g. https://s3.example.net or http://127.0.0.1:3900
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long, default_value = "garage")]
    pub region: String,
    #[arg(long)]
    pub bucket: Option<String>,
    /// The prefix the replica was written under ("" for none; ends with /)
    #[arg(long, default_value = "")]
    pub prefix: String,
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// A file holding the secret access key
    #[arg(long)]
    pub secret_key_file: Option<PathBuf>,
    /// Virtual-host style addressing (bucket.host) instead of path style (host/bucket)
    #[arg(long)]
    pub virtual_host: bool,
    /// The new data folder (must be empty or absent)
    #[arg(long)]
    pub to: PathBuf,
    /// Put each target's folder under this folder (its old absolute path below it) instead of where it was
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Only this target (its id)
    #[arg(long)]
    pub target: Option<String>,
    /// Only this backup (its id), with its target's definition
    #[arg(long)]
    pub backup: Option<String>,
    /// Downloads at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum HeldCommand {
    /// List held backups: who deleted each, from where, when, and until when it is kept
    List,
    /// Bring a held backup back into its target (its target too, if that was deleted)
    Restore {
        /// The held backup's id (see `bakch held list`)
        id: String,
    },
    /// End holds now and remove their content for good, then collect what nothing needs
    Purge(HeldPurgeArgs),
}

#[derive(Debug, Args)]
pub struct HeldPurgeArgs {
    /// Only these held backups (by id); with none, every held backup (narrowed by --older-than)
    pub ids: Vec<String>,
    /// Only backups deleted longer ago than this: seconds, or a number with s, m, h or d (`3d`)
    #[arg(long, value_parser = parse_age)]
    pub older_than: Option<u64>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

/// `90`, `90s`, `15m`, `12h`, `3d` as seconds.
fn parse_age(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a duration such as 3d, 12h, 15m or 90s"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{s}' is not a duration such as 3d, 12h, 15m or 90s")),
    };
    n.checked_mul(unit).ok_or_else(|| format!("'{s}' is too long"))
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it (once: only its hash is kept)
    Add(KeyAddArgs),
    /// List the keys: name, role, targets, created, last used and from where
    List,
    /// Revoke a key; it stops working at once, also on a running server
    Revoke {
        /// The key's name
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// A name for the key (say, the client machine's)
    pub name: String,
    /// admin (everything), read (every GET, nothing that changes data) or upload (only into --target)
    #[arg(long, value_parser = ["admin", "read", "upload"])]
    pub role: String,
    /// For an upload key: a target (id or alias) it may upload to and read; repeat for more
    #[arg(long = "target")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also re-hash every file of every backup (reads all content)
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5050]
    #[arg(long, env = "BAKCH_BIND")]
    pub bind: Option<String>,
    /// Number of job workers [default: 2]
    #[arg(long, env = "BAKCH_WORKERS")]
    pub workers: Option<usize>,
    /// Targets per page in GET /api/target [default: 10]
    #[arg(long, env = "BAKCH_PAGE_SIZE")]
    pub page_size: Option<usize>,
    /// Log filter, e.g. "info" or "bakch=debug" [default: info]
    #[arg(long, env = "BAKCH_LOG")]
    pub log: Option<String>,
    /// Allow listening beyond loopback with no API key (anyone on the network gets in)
    #[arg(long, env = "BAKCH_INSECURE_OPEN_API")]
    pub insecure_open_api: bool,
    /// Let browsers on this machine (loopback clients) into the web UI without the password
    #[arg(long, env = "BAKCH_WEB_LOOPBACK_BYPASS")]
    pub web_loopback_bypass: bool,
}

#[derive(Debug, Args)]
pub struct NewApiKeyArgs {
    /// Replace an existing key
    #[arg(short, long)]
    pub overwrite: bool,
}

impl Cli {
    /// Parses the command line; with no subcommand it parses again as `serve`, so that the
    /// `BAKCH_*` variables are read, and refused when malformed, exactly as `bakch serve` does.
    pub fn parse_or_serve() -> (GlobalArgs, Command) {
        let cli = Cli::parse();
        if let Some(command) = cli.command {
            return (cli.global, command);
        }
        let again = Cli::parse_from(std::env::args_os().chain([OsString::from("serve")]));
        (again.global, again.command.unwrap_or_else(|| Command::Serve(ServeArgs::default())))
    }
}
