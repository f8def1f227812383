//! Runtime configuration, built once at start-up.
//!
//! Order of precedence, lowest first: built-in defaults, the TOML file (`--config`, else
//! `<data-dir>/config.toml` when present), `BAKCH_*` variables, then flags. [`Config::load`]
//! validates the result so that a bad value stops bakch with a clear message before it serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{GlobalArgs, ServeArgs};
use crate::model::job::Scheduled;
use crate::model::notify::EventKind;
use crate::store::perms::Modes;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub workers: usize,
    pub page_size: usize,
    pub log: String,
    pub insecure_open_api: bool,
    /// Web UI: loopback clients need no password (for a reverse proxy that does its own login,
    /// or a machine with one trusted user).
    pub web_loopback_bypass: bool,
    /// Cron schedule per scheduled job name.
    pub schedules: BTreeMap<String, String>,
    /// A sequential upload idle for longer than this is purged.
    pub seq_upload_timeout_secs: u64,
    /// Unreferenced blobs younger than this are kept by garbage collection.
    pub gc_grace_secs: u64,
    /// Temp files older than this, that nothing owns, are purged.
    pub tmp_max_age_secs: u64,
    /// A failed upload's data is kept this long for a retry.
    pub failed_upload_keep_secs: u64,
    /// Input limits (see [`Limits`]).
    pub limits: Limits,
    /// Modes of blobs and of what bakch creates in target folders (`[permissions]`).
    pub modes: Modes,
    /// How long the audit trail keeps an entry (`[audit] keep_days`).
    pub audit_keep_days: u32,
    /// How long a deleted backup's content is held before it may be collected
    /// (`[protection] hold_days`; zero turns the hold off).
    pub hold: std::time::Duration,
    /// `[health]`: reminders and the low-disk threshold.
    pub health: HealthConfig,
    /// `[[notify]]`: where events are sent.
    pub notify: Vec<Destination>,
    /// `[[replica]]`: encrypted copies on S3-compatible storage.
    pub replicas: Vec<Replica>,
}

/// One `[[replica]]` entry, checked.
#[derive(Debug, Clone)]
pub struct Replica {
    /// How commands, pages and metrics call it.
    pub name: String,
    /// The bucket and how to reach it (secret key read from its file at start).
    pub endpoint: crate::replica::s3::Endpoint,
    /// Uploads at once.
    pub concurrency: usize,
    /// Blobs larger than this go up in parts of this size (multipart upload).
    pub part_size: usize,
    /// Content nothing refers to any more stays in the bucket this long after that is noticed.
    pub delete_delay: std::time::Duration,
    /// The verification job re-reads every object once over this period.
    pub verify_period: std::time::Duration,
    /// A sync starts this long after the last new backup (debounce).
    pub debounce: std::time::Duration,
}

/// A `[[replica]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplica {
    name: String,
    endpoint: String,
    #[serde(default = "default_region")]
    region: String,
    bucket: String,
    #[serde(default)]
    prefix: String,
    access_key_id: String,
    secret_key_file: PathBuf,
    #[serde(default = "yes")]
    path_style: bool,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Bytes per second, all uploads together; 0 or absent = no limit.
    #[serde(default)]
    bandwidth_limit: u64,
    #[serde(default = "default_part_mib")]
    part_size_mib: usize,
    #[serde(default = "default_delete_delay")]
    delete_delay_days: f64,
    #[serde(default = "default_verify_period")]
    verify_period_days: f64,
    #[serde(default = "default_debounce")]
    debounce_secs: u64,
    #[serde(default = "default_attempts")]
    attempts: u32,
    #[serde(default = "default_backoff_ms")]
    backoff_ms: u64,
}

fn default_region() -> String {
    "garage".into()
}
fn yes() -> bool {
    true
}
fn default_concurrency() -> usize {
    4
}
fn default_part_mib() -> usize {
    16
}
fn default_delete_delay() -> f64 {
    30.0
}
fn default_verify_period() -> f64 {
    30.0
}
fn default_debounce() -> u64 {
    60
}
fn default_attempts() -> u32 {
    6
}
fn default_backoff_ms() -> u64 {
    500
}

impl RawReplica {
    fn check(self) -> Result<Replica, String> {
        let at = format!("[[replica]] '{}'", self.name);
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!("{at}: name must be 1 to 64 letters, digits, '-' or '_'"));
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!("{at}: endpoint '{}' must start with http:// or https://", self.endpoint));
        }
        if self.bucket.trim().is_empty() {
            return Err(format!("{at}: bucket must not be blank"));
        }
        if !self.prefix.is_empty() && (!self.prefix.ends_with('/') || self.prefix.starts_with('/')) {
            return Err(format!("{at}: prefix '{}' must end with '/' and not start with one", self.prefix));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(format!("{at}: concurrency must be 1 to 64, got {}", self.concurrency));
        }
        if !(5..=1024).contains(&self.part_size_mib) {
            return Err(format!("{at}: part_size_mib must be 5 to 1024 (S3's part sizes), got {}", self.part_size_mib));
        }
        if !(0.0..=36500.0).contains(&self.delete_delay_days) {
            return Err(format!("{at}: delete_delay_days must be 0 to 36500, got {}", self.delete_delay_days));
        }
        if !(0.0001..=36500.0).contains(&self.verify_period_days) {
            return Err(format!("{at}: verify_period_days must be more than 0, got {}", self.verify_period_days));
        }
        if !(1..=20).contains(&self.attempts) {
            return Err(format!("{at}: attempts must be 1 to 20, got {}", self.attempts));
        }
        let secret_key = std::fs::read_to_string(&self.secret_key_file)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{at}: cannot read secret_key_file {}: {e}", self.secret_key_file.display()))?;
        let endpoint = crate::replica::s3::Endpoint {
            endpoint: self.endpoint,
            region: self.region,
            bucket: self.bucket,
            prefix: self.prefix,
            access_key_id: self.access_key_id,
            secret_key,
            path_style: self.path_style,
            attempts: self.attempts,
            backoff: std::time::Duration::from_millis(self.backoff_ms),
            bandwidth_limit: self.bandwidth_limit,
        };
        crate::replica::s3::Client::new(&endpoint).map_err(|e| format!("{at}: {e}"))?;
        Ok(Replica {
            name: self.name,
            endpoint,
            concurrency: self.concurrency,
            part_size: self.part_size_mib << 20,
            delete_delay: std::time::Duration::from_secs_f64(self.delete_delay_days * 86400.0),
            verify_period: std::time::Duration::from_secs_f64(self.verify_period_days * 86400.0),
            debounce: std::time::Duration::from_secs(self.debounce_secs),
        })
    }
}

/// `[health]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Repeat the event of a state that stays bad this often (seconds); 0 = never.
    pub reminder_secs: u64,
    /// The data disk is low below this share of its size (percent); 0 = never.
    pub disk_low_percent: u8,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { reminder_secs: 0, disk_low_percent: 5 }
    }
}

/// One `[[notify]]` entry, checked.
#[derive(Debug, Clone)]
pub struct Destination {
    /// How the log, the UI and the delivery jobs call it (`name`, else `<kind>-<n>`).
    pub name: String,
    /// The events it wants; empty = all of them.
    pub events: Vec<EventKind>,
    pub kind: DestinationKind,
}

#[derive(Debug, Clone)]
pub enum DestinationKind {
    /// A JSON POST, signed with HMAC-SHA256 when a secret is set.
    Webhook { url: String, secret: Option<String> },
    /// A POST of the text to an ntfy topic URL.
    Ntfy { url: String, token: Option<String> },
    /// An e-mail through an SMTP server.
    Email(Smtp),
}

/// How an e-mail is sent.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Read at each sending, so a changed password needs no restart.
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the start (port 465).
    Tls,
    /// No encryption: only for a relay on this machine.
    None,
}

impl Destination {
    pub fn wants(&self, event: EventKind) -> bool {
        event == EventKind::Test || self.events.is_empty() || self.events.contains(&event)
    }
}

/// A `[[notify]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    kind: String,
    name: Option<String>,
    events: Option<Vec<String>>,
    url: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    to: Option<Vec<String>>,
}

impl RawDestination {
    fn check(self, n: usize) -> Result<Destination, String> {
        let name = self.name.clone().unwrap_or_else(|| format!("{}-{}", self.kind, n + 1));
        let at = format!("[[notify]] '{name}'");
        let mut events = Vec::new();
        for e in self.events.iter().flatten() {
            let kind = EventKind::parse(e).filter(|k| *k != EventKind::Test).ok_or_else(|| {
                format!("{at}: unknown event '{e}'; known: late, failed, damaged, recovered, unusual_change, disk_low, quota_warning, replica_failed")
            })?;
            events.push(kind);
        }
        let url = |what: &str| -> Result<String, String> {
            let url = self.url.clone().ok_or_else(|| format!("{at}: `url` is required for a {what}"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{at}: url '{url}' must start with http:// or https://"));
            }
            Ok(url)
        };
        let read = |path: &PathBuf, what: &str| -> Result<String, String> {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{at}: cannot read the {what} file {}: {e}", path.display()))
        };
        let kind = match self.kind.as_str() {
            "webhook" => {
                let secret = match (&self.secret, &self.secret_file) {
                    (Some(_), Some(_)) => return Err(format!("{at}: give `secret` or `secret_file`, not both")),
                    (Some(s), None) => Some(s.clone()),
                    (None, Some(p)) => Some(read(p, "secret")?),
                    (None, None) => None,
                };
                DestinationKind::Webhook { url: url("webhook")?, secret }
            }
            "ntfy" => DestinationKind::Ntfy {
                url: url("ntfy topic")?,
                token: self.token_file.as_ref().map(|p| read(p, "token")).transpose()?,
            },
            "email" => {
                let host = self.smtp_host.clone().ok_or_else(|| format!("{at}: `smtp_host` is required"))?;
                let tls = match self.tls.as_deref().unwrap_or("starttls") {
                    "starttls" => SmtpTls::Starttls,
                    "tls" => SmtpTls::Tls,
                    "none" => SmtpTls::None,
                    other => return Err(format!("{at}: tls '{other}' must be starttls, tls or none")),
                };
                let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if tls == SmtpTls::None && !local {
                    return Err(format!("{at}: tls = \"none\" is only allowed for a relay on this machine"));
                }
                if let Some(p) = &self.password_file {
                    read(p, "password")?;
                }
                let to = self.to.clone().unwrap_or_default();
                if to.is_empty() {
                    return Err(format!("{at}: `to` must list at least one address"));
                }
                let from = self.from.clone().ok_or_else(|| format!("{at}: `from` is required"))?;
                for addr in to.iter().chain([&from]) {
                    addr.parse::<lettre::Address>()
                        .map_err(|e| format!("{at}: '{addr}' is not an e-mail address: {e}"))?;
                }
                DestinationKind::Email(Smtp {
                    port: self.smtp_port.unwrap_or(match tls {
                        SmtpTls::Starttls => 587,
                        SmtpTls::Tls => 465,
                        SmtpTls::None => 25,
                    }),
                    host,
                    tls,
                    username: self.username.clone(),
                    password_file: self.password_file.clone(),
                    from,
                    to,
                })
            }
            other => return Err(format!("[[notify]] entry {}: kind '{other}' must be webhook, ntfy or email", n + 1)),
        };
        Ok(Destination { name, events, kind })
    }
}

/// `[protection]`: the hold on deletions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Protection {
    /// Days; fractions allowed (a test holds for seconds).
    hold_days: f64,
}

impl Default for Protection {
    fn default() -> Self {
        Protection { hold_days: 7.0 }
    }
}

/// `[audit]`: how long entries are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Audit {
    keep_days: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { keep_days: 365 }
    }
}

/// What one request or archive may bring; 0 means no limit where noted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Bytes of all files in one upload request (0: no limit).
    pub max_upload_bytes: u64,
    /// Bytes of a JSON body.
    pub max_json_bytes: usize,
    /// Parts of one multipart body.
    pub max_upload_parts: usize,
    /// A body that sends nothing for this long is cut off.
    pub body_idle_timeout_secs: u64,
    /// Entries of one archive.
    pub max_archive_entries: u64,
    /// Bytes unpacked from one archive (0: no limit); stops zip and gzip bombs.
    pub max_archive_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 0,
            max_json_bytes: 1 << 20,
            max_upload_parts: 10_000,
            body_idle_timeout_secs: 60,
            max_archive_entries: 1_000_000,
            max_archive_bytes: 0,
        }
    }
}

/// `[permissions]`: octal strings, checked by [`Modes::parse`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Permissions {
    file_mode: String,
    dir_mode: String,
}

impl Default for Permissions {
    fn default() -> Self {
        let m = Modes::default();
        Permissions { file_mode: format!("{:04o}", m.file), dir_mode: format!("{:04o}", m.dir) }
    }
}

/// The shape of the TOML file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    bind: Option<String>,
    workers: Option<usize>,
    page_size: Option<usize>,
    log: Option<String>,
    insecure_open_api: Option<bool>,
    web_loopback_bypass: Option<bool>,
    seq_upload_timeout_secs: Option<u64>,
    gc_grace_secs: Option<u64>,
    tmp_max_age_secs: Option<u64>,
    failed_upload_keep_secs: Option<u64>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    permissions: Permissions,
    #[serde(default)]
    schedules: BTreeMap<String, String>,
    #[serde(default)]
    audit: Audit,
    #[serde(default)]
    protection: Protection,
    #[serde(default)]
    health: HealthConfig,
    #[serde(default)]
    notify: Vec<RawDestination>,
    #[serde(default)]
    replica: Vec<RawReplica>,
}

impl Config {
    /// Layers defaults, file, environment and flags; fails with a message meant for the user.
    pub fn load(global: &GlobalArgs, serve: &ServeArgs) -> Result<Config, String> {
        let default_data = global.data_dir.clone().unwrap_or_else(|| PathBuf::from("data"));
        let file_path = match &global.config {
            Some(p) => Some(p.clone()),
            None => {
                let p = default_data.join("config.toml");
                p.is_file().then_some(p)
            }
        };
        let file = match &file_path {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };

        let data_dir = global.data_dir.clone().or(file.data_dir).unwrap_or(default_data);
        let bind = serve.bind.clone().or(file.bind).unwrap_or_else(|| "127.0.0.1:5050".to_string());
        let bind: SocketAddr =
            bind.parse().map_err(|_| format!("bind address '{bind}' is not an IP:port such as 127.0.0.1:5050"))?;
        let workers = serve.workers.or(file.workers).unwrap_or(2);
        if !(1..=64).contains(&workers) {
            return Err(format!("workers must be between 1 and 64, got {workers}"));
        }
        let page_size = serve.page_size.or(file.page_size).unwrap_or(10);
        if !(1..=1000).contains(&page_size) {
            return Err(format!("page_size must be between 1 and 1000, got {page_size}"));
        }
        let mut schedules: BTreeMap<String, String> =
            Scheduled::ALL.iter().map(|s| (s.name().to_string(), s.spec().default_schedule.to_string())).collect();
        for (name, cron) in file.schedules {
            if !schedules.contains_key(&name) {
                let known: Vec<&str> = Scheduled::ALL.iter().map(|s| s.name()).collect();
                return Err(format!("unknown scheduled job '{name}' in [schedules]; known: {}", known.join(", ")));
            }
            schedules.insert(name, cron);
        }
        for (name, cron) in &schedules {
            parse_cron(cron).map_err(|e| format!("schedule of {name} ('{cron}') is not valid: {e}"))?;
        }
        let audit_keep_days = file.audit.keep_days;
        if !(1..=36500).contains(&audit_keep_days) {
            return Err(format!("[audit] keep_days must be between 1 and 36500, got {audit_keep_days}"));
        }
        let hold_days = file.protection.hold_days;
        if !(0.0..=3650.0).contains(&hold_days) {
            return Err(format!("[protection] hold_days must be between 0 and 3650, got {hold_days}"));
        }
        let modes = Modes::parse(&file.permissions.file_mode, &file.permissions.dir_mode)?;
        if file.health.disk_low_percent > 99 {
            return Err(format!("[health] disk_low_percent must be 0 to 99, got {}", file.health.disk_low_percent));
        }
        let mut notify: Vec<Destination> = Vec::new();
        for (n, raw) in file.notify.into_iter().enumerate() {
            let d = raw.check(n)?;
            if notify.iter().any(|o| o.name == d.name) {
                return Err(format!("two [[notify]] entries are named '{}'", d.name));
            }
            notify.push(d);
        }
        let mut replicas: Vec<Replica> = Vec::new();
        for raw in file.replica {
            let r = raw.check()?;
            if replicas.iter().any(|o| o.name == r.name) {
                return Err(format!("two [[replica]] entries are named '{}'", r.name));
            }
            replicas.push(r);
        }
        let data_dir = absolute(&data_dir)?;
        Ok(Config {
            data_dir,
            bind,
            workers,
            page_size,
            log: serve.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            insecure_open_api: serve.insecure_open_api || file.insecure_open_api.unwrap_or(false),
            web_loopback_bypass: serve.web_loopback_bypass || file.web_loopback_bypass.unwrap_or(false),
            schedules,
            seq_upload_timeout_secs: file.seq_upload_timeout_secs.unwrap_or(3600),
            gc_grace_secs: file.gc_grace_secs.unwrap_or(24 * 3600),
            tmp_max_age_secs: file.tmp_max_age_secs.unwrap_or(24 * 3600),
            failed_upload_keep_secs: file.failed_upload_keep_secs.unwrap_or(7 * 24 * 3600),
            limits: file.limits,
            modes,
            audit_keep_days,
            hold: std::time::Duration::from_secs_f64(hold_days * 86400.0),
            health: file.health,
            notify,
            replicas,
        })
    }

    /// The data folder of a command that does not serve (`newapikey`).
    pub fn data_dir_only(global: &GlobalArgs) -> Result<PathBuf, String> {
        Config::load(global, &ServeArgs::default()).map(|c| c.data_dir)
    }

    pub fn db_path(&self) -> PathBuf {
        db_path_in(&self.data_dir)
    }
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn apikey_path(&self) -> PathBuf {
        apikey_path(&self.data_dir)
    }
}

/// Where the API key lives inside a data folder.
pub fn apikey_path(data_dir: &Path) -> PathBuf {
    data_dir.join("apikey.json")
}

/// Parses a cron schedule the way the scheduler does (six fields, seconds first).
pub fn parse_cron(cron: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(cron)
        .map_err(|e| e.to_string())
}

fn read_file_config(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {} is not valid: {e}", path.display()))
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("cannot resolve data folder {}: {e}", path.display()))
}

/// The database in a data folder.
pub fn db_path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("bakch.sqlite3")
}
