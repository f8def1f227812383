//! bakch: a self-hosted backup appliance that speaks the Backup-chan API.
//!
//! `main` parses the command line, loads the config and wires the parts together; nothing else.

#![forbid(unsafe_code)]

mod api;
mod auth;
mod cli;
mod config;
mod db;
mod error;
mod http;
mod jobs;
mod logging;
mod model;
mod notify;
mod offline;
mod push;
mod replica;
mod service;
mod state;
mod store;
mod time;
mod watched;
mod web;

use std::process::ExitCode;
use std::sync::Arc;

use actix_web::{App, HttpServer};

use crate::cli::{Cli, Command, GlobalArgs, ServeArgs};
use crate::config::Config;
use crate::service::Service;
use crate::state::AppState;

fn main() -> ExitCode {
    // Before any thread starts: whatever bakch creates without an explicit mode stays private.
    store::perms::restrict_umask();
    let (global, command) = Cli::parse_or_serve();
    let result = match command {
        Command::Newapikey(args) => new_api_key(&global, args.overwrite),
        Command::Serve(args) => serve(&global, &args),
        Command::Passwd => Config::data_dir_only(&global).and_then(|dir| {
            auth::password::passwd(&dir)?;
            let entry = model::audit::Entry::new(model::audit::Who::cli(), model::audit::Action::PasswordChanged);
            if let Err(e) = service::audit::record_offline(&config::db_path_in(&dir), &entry) {
                eprintln!("bakch: the password is set, but the audit trail could not record it: {e}");
            }
            Ok(())
        }),
        Command::RebuildDb => rebuild_db(&global),
        Command::Check(args) => return check(&global, args.deep),
        Command::Key(cmd) => key_command(&global, cmd),
        Command::Held(cmd) => held_command(&global, cmd),
        Command::NotifyTest => notify_test(&global),
        Command::Push(args) => push::run(&args),
        Command::Replica(cmd) => replica_command(&global, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bakch: {message}");
            ExitCode::FAILURE
        }
    }
}

fn new_api_key(global: &GlobalArgs, overwrite: bool) -> Result<(), String> {
    let data_dir = Config::data_dir_only(global)?;
    let path = config::apikey_path(&data_dir);
    let key = auth::apikey::create(&path, overwrite)?;
    println!("New API key written to {}:", path.display());
    println!("{key}");
    Ok(())
}

/// `bakch key`: works on `keys.json` and reads the database read-only, so it may run beside a
/// server (which sees the change on its next request).
fn key_command(global: &GlobalArgs, cmd: cli::KeyCommand) -> Result<(), String> {
    use auth::keys::{self, RoleName};
    use model::audit::{Action, Entry, Who};
    let config = Config::load(global, &ServeArgs::default())?;
    let path = keys::path(&config.data_dir);
    match cmd {
        cli::KeyCommand::Add(args) => {
            let role = RoleName::parse(&args.role).ok_or_else(|| format!("unknown role '{}'", args.role))?;
            let mut ids = Vec::new();
            for wanted in &args.targets {
                let found = service::keys::find_target_offline(&config.db_path(), wanted).map_err(|e| e.to_string())?;
                let (id, _) = found.ok_or_else(|| format!("there is no target '{wanted}' (give its id or alias)"))?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            store::perms::own_data_dir_cli(&config.data_dir)?;
            let key = keys::add(&path, &args.name, role, ids.clone())?;
            let mut entry = Entry::new(Who::cli(), Action::KeyAdded);
            entry.message = Some(format!("{} key '{}'", role.as_str(), args.name.trim()));
            entry.target = ids.first().cloned();
            offline::audit(&config, &entry);
            println!("New {} key '{}' (shown only now; keep it on the client):", role.as_str(), args.name.trim());
            println!("{key}");
        }
        cli::KeyCommand::List => {
            let uses = service::keys::key_uses_offline(&config.db_path()).map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            if config.apikey_path().exists() {
                rows.push((
                    auth::apikey::NAME.to_string(),
                    "admin".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    None,
                ));
            }
            for k in keys::list(&path)? {
                let scope = if k.targets.is_empty() {
                    "-".to_string()
                } else {
                    k.targets
                        .iter()
                        .map(|id| match service::keys::find_target_offline(&config.db_path(), id) {
                            Ok(Some((_, name))) => format!("{name} ({id})"),
                            _ => format!("{id} (gone)"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                rows.push((k.name.clone(), k.role.as_str().to_string(), scope, k.created.clone(), k.revoked.clone()));
            }
            if rows.is_empty() {
                println!("no keys: the API is open (loopback only)");
            }
            for (name, role, scope, created, revoked) in rows {
                let used = uses.get(&name).map_or("never".to_string(), |(at, addr)| format!("{at} from {addr}"));
                let state = revoked.map_or(String::new(), |at| format!("  REVOKED {at}"));
                println!("{name}\trole {role}\ttargets {scope}\tcreated {created}\tlast used {used}{state}");
            }
        }
        cli::KeyCommand::Revoke { name } => {
            if name == auth::apikey::NAME {
                return Err("apikey.json is not revoked here: run `bakch newapikey -o`, or delete the file".into());
            }
            keys::revoke(&path, &name)?;
            let mut entry = Entry::new(Who::cli(), Action::KeyRevoked);
            entry.message = Some(format!("key '{name}'"));
            offline::audit(&config, &entry);
            println!("key '{name}' revoked");
        }
    }
    Ok(())
}

/// `bakch held`: see `offline::held`.
fn held_command(global: &GlobalArgs, cmd: cli::HeldCommand) -> Result<(), String> {
    let config = Config::load(global, &ServeArgs::default())?;
    match cmd {
        cli::HeldCommand::List => {
            let held = offline::held::list(&config)?;
            if held.is_empty() {
                println!("no held backups");
            }
            for h in held {
                let session = h.deleted_by.session.map(|s| format!(" (session {s})")).unwrap_or_default();
                println!(
                    "{}\t{} of '{}' ({})\tdeleted {} by {}{session} from {}\theld until {}",
                    h.id,
                    h.name,
                    h.target_name,
                    model::backup::human_bytes(h.size),
                    h.deleted_at,
                    h.deleted_by.who,
                    h.deleted_by.from,
                    h.hold_until
                );
            }
        }
        cli::HeldCommand::Restore { id } => println!("{}", offline::held::restore(&config, &id)?),
        cli::HeldCommand::Purge(args) => {
            println!("{}", offline::held::purge(&config, &args.ids, args.older_than, args.yes)?);
        }
    }
    Ok(())
}

/// `bakch replica`: see `offline::replica`.
fn replica_command(global: &GlobalArgs, cmd: cli::ReplicaCommand) -> Result<(), String> {
    match cmd {
        cli::ReplicaCommand::Init { name } => {
            let config = Config::load(global, &ServeArgs::default())?;
            println!("{}", offline::replica::init(&config, &name)?);
        }
        cli::ReplicaCommand::Status => {
            let config = Config::load(global, &ServeArgs::default())?;
            println!("{}", offline::replica::status(&config)?);
        }
        cli::ReplicaCommand::Restore(a) => {
            let a = *a;
            let endpoint = match &a.replica {
                Some(name) => {
                    let config = Config::load(global, &ServeArgs::default())?;
                    let r = config
                        .replicas
                        .iter()
                        .find(|r| &r.name == name)
                        .ok_or_else(|| format!("no [[replica]] named '{name}' in the config"))?;
                    r.endpoint.clone()
                }
                None => {
                    let need = |v: &Option<String>, flag: &str| {
                        v.clone().ok_or_else(|| format!("--{flag} is required (or --replica NAME with a config)"))
                    };
                    let secret_file = a
                        .secret_key_file
                        .clone()
                        .ok_or_else(|| "--secret-key-file is required (or --replica NAME with a config)".to_string())?;
                    let secret_key = std::fs::read_to_string(&secret_file)
                        .map(|s| s.trim().to_string())
                        .map_err(|e| format!("cannot read {}: {e}", secret_file.display()))?;
                    replica::s3::Endpoint {
                        endpoint: need(&a.endpoint, "endpoint")?,
                        region: a.region.clone(),
                        bucket: need(&a.bucket, "bucket")?,
                        prefix: a.prefix.clone(),
                        access_key_id: need(&a.access_key_id, "access-key-id")?,
                        secret_key,
                        path_style: !a.virtual_host,
                        attempts: 6,
                        backoff: std::time::Duration::from_millis(500),
                        bandwidth_limit: 0,
                    }
                }
            };
            let args = offline::replica::RestoreArgs {
                endpoint,
                to: a.to,
                root: a.root,
                target: a.target,
                backup: a.backup,
                concurrency: a.concurrency,
            };
            println!("{}", offline::replica::restore(&args)?);
        }
    }
    Ok(())
}

/// `bakch notify-test`: sends at once (not through the job queue, so it works with bakch
/// stopped too) and reports each destination.
fn notify_test(global: &GlobalArgs) -> Result<(), String> {
    let config = Config::load(global, &ServeArgs::default())?;
    if config.notify.is_empty() {
        return Err("no [[notify]] destinations are configured".into());
    }
    let event = model::notify::Event::test(time::now());
    let mut failed = 0;
    for dest in &config.notify {
        match notify::send(dest, &event) {
            Ok(()) => println!("{}: sent", dest.name),
            Err(e) => {
                failed += 1;
                println!("{}: FAILED: {e}", dest.name);
            }
        }
    }
    if failed > 0 { Err(format!("{failed} of {} destination(s) failed", config.notify.len())) } else { Ok(()) }
}

fn rebuild_db(global: &GlobalArgs) -> Result<(), String> {
    let config = Config::load(global, &ServeArgs::default())?;
    let started = std::time::Instant::now();
    let report = offline::rebuild::run(&config)?;
    for problem in &report.problems {
        eprintln!("bakch rebuild-db: {problem}");
    }
    println!(
        "Rebuilt {} from the manifests in {:.1} s: {} target(s), {} backup(s), {} file(s), {} held backup(s); {} problem(s) reported.",
        config.db_path().display(),
        started.elapsed().as_secs_f64(),
        report.targets,
        report.backups,
        report.files,
        report.held,
        report.problems.len()
    );
    if let Some(old) = report.old_kept_at {
        println!("The previous database is kept as {}.", old.display());
    }
    println!("Queued jobs, open sequential uploads and scheduled-run times are not rebuilt.");
    Ok(())
}

/// Exit status 0: nothing found; 1: something found; 2: the check could not run.
fn check(global: &GlobalArgs, deep: bool) -> ExitCode {
    let report = Config::load(global, &ServeArgs::default()).and_then(|config| offline::check::run(&config, deep));
    match report {
        Ok(r) => {
            for line in &r.problems {
                println!("problem: {line}");
            }
            for line in &r.notes {
                println!("note: {line}");
            }
            println!(
                "{} backup(s) checked{}: {} problem(s).",
                r.backups,
                if deep { " (deep)" } else { "" },
                r.problems.len()
            );
            if r.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(message) => {
            eprintln!("bakch: {message}");
            ExitCode::from(2)
        }
    }
}

fn serve(global: &GlobalArgs, args: &ServeArgs) -> Result<(), String> {
    let config = Config::load(global, args)?;
    // Logging needs the folder; the narrowing is logged by `Service::open`, once logging runs.
    store::perms::create_dir_all(&config.data_dir, store::perms::PRIVATE_DIR)
        .map_err(|e| format!("cannot create data folder {}: {e}", config.data_dir.display()))?;
    let key = auth::apikey::ApiKey::new(config.apikey_path());
    if !config.bind.ip().is_loopback() && !key.exists() && !config.insecure_open_api {
        return Err(format!(
            "refusing to listen on {} with no API key: anyone on the network could read and delete backups. \
             Run `bakch newapikey` first, or bind to 127.0.0.1, or pass --insecure-open-api if you really mean it",
            config.bind
        ));
    }
    // Held while serving: `rebuild-db` and `check` refuse to run beside a server, and so does a
    // second server on the same data folder.
    let _lock = offline::lock(&config.data_dir)?;
    let _log_guard = logging::init(&config.log_dir(), &config.log)?;
    tracing::info!("bakch {} starting; data folder {}", env!("CARGO_PKG_VERSION"), config.data_dir.display());
    let service = Arc::new(Service::open(config.clone()).map_err(|e| e.to_string())?);
    service.recover().map_err(|e| format!("start-up recovery failed: {e}"))?;
    actix_web::rt::System::new().block_on(run(service, key))
}

async fn run(service: Arc<Service>, key: auth::apikey::ApiKey) -> Result<(), String> {
    let config = service.config.clone();
    jobs::worker::spawn_workers(service.clone(), config.workers);
    jobs::health::spawn_monitor(service.clone());
    let scheduler = jobs::scheduler::Scheduler::start(service.clone()).await.map_err(|e| e.to_string())?;
    jobs::replica::spawn_debounced_sync(service.clone(), scheduler.clone());
    let sessions = auth::session::Sessions::open(&config)?;
    let state = actix_web::web::Data::new(AppState { service, scheduler, apikey: key, sessions });
    let json_limit = config.limits.max_json_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(api::probe::count_requests))
            .configure(|cfg| api::configure(cfg, json_limit))
            .configure(api::probe::configure)
            .configure(web::configure)
    })
    .bind(config.bind)
    .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    tracing::info!("listening on http://{}", config.bind);
    server.run().await.map_err(|e| format!("server stopped: {e}"))
}
