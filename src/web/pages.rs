//! The home redirect, Stats (totals and a chart drawn as SVG here) and Log (the last lines,
//! coloured and filtered by level).

use actix_web::{HttpRequest, web};
use askama::Template;

use super::render::{ChartRow, size, usage_chart};
use super::{Chrome, Ctx, Form, PageResult, block, html, see_other};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { see_other("/targets") }))
        .service(web::resource("/stats").route(web::get().to(stats)))
        .service(web::resource("/log").route(web::get().to(log)));
}

struct UsageRow {
    id: String,
    name: String,
    logical: String,
    disk: String,
    saved: String,
    storage: &'static str,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    c: Chrome,
    targets: i64,
    backups: i64,
    recycled: i64,
    /// Of every backup, recycled ones included, as `/api/stats` counts them.
    total_size: String,
    recycled_size: String,
    disk_used: String,
    dedup_saved: String,
    held: i64,
    held_size: String,
    rows: Vec<UsageRow>,
    chart: String,
}

async fn stats(state: web::Data<AppState>, ctx: Ctx) -> PageResult {
    let svc = state.service.clone();
    let (stats, usage) = block(move || {
        let stats = svc.stats()?;
        let mut usage = Vec::new();
        for s in svc.target_summaries(None)? {
            let u = svc.target_usage(&s.target)?;
            usage.push((s.target, u));
        }
        Ok((stats, usage))
    })
    .await?;
    let chart_rows: Vec<ChartRow> =
        usage.iter().map(|(t, u)| ChartRow { label: t.name.clone(), logical: u.logical, disk: u.disk_used }).collect();
    html(&StatsPage {
        c: ctx.chrome("Stats", "stats"),
        targets: stats.total_targets,
        backups: stats.total_backups,
        recycled: stats.total_recycled_backups,
        total_size: size(stats.total_target_size + stats.total_recycle_bin_size),
        recycled_size: size(stats.total_recycle_bin_size),
        disk_used: size(stats.disk_used),
        dedup_saved: size(stats.dedup_saved),
        held: stats.held_backups,
        held_size: size(stats.held_bytes),
        chart: if chart_rows.is_empty() { String::new() } else { usage_chart(&chart_rows) },
        rows: usage
            .iter()
            .map(|(t, u)| UsageRow {
                id: t.id.clone(),
                name: t.name.clone(),
                logical: size(u.logical),
                disk: size(u.disk_used),
                saved: size((u.logical - u.disk_used).max(0)),
                storage: u.storage,
            })
            .collect(),
    })
}

/// Levels, most severe first; a filter shows its level and the ones above it.
const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

struct LogLine {
    level: &'static str,
    text: String,
    /// How many more times the same message came right before it (dropped from the page).
    repeats: usize,
}

/// A log line's message without its time, so that repeats of one message can be told.
fn message_of(line: &str) -> &str {
    line.split_once(char::is_whitespace).map_or(line, |(_, rest)| rest.trim_start())
}

/// Newest first, and each run of one message repeated (a client retrying, a job on a short
/// schedule) shown once with its count: the newest line of the run, which has its latest time.
fn newest_first(lines: Vec<LogLine>, count: usize) -> Vec<LogLine> {
    let mut out: Vec<LogLine> = Vec::new();
    for line in lines.into_iter().rev() {
        if let Some(last) = out.last_mut()
            && message_of(&last.text) == message_of(&line.text)
        {
            last.repeats += 1;
            continue;
        }
        if out.len() == count {
            break;
        }
        out.push(line);
    }
    out
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    c: Chrome,
    lines: Vec<LogLine>,
    level: String,
    count: usize,
    counts: Vec<usize>,
    levels: Vec<&'static str>,
}

/// The level of a log line as tracing writes it (`<time>  INFO target: message`).
fn level_of(line: &str) -> Option<&'static str> {
    let word = line.split_whitespace().nth(1)?;
    LEVELS.iter().find(|l| **l == word).copied()
}

async fn log(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let q = Form::from_query(&req);
    let count = q.text("lines").parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)).unwrap_or(200);
    let level = q.text("level").to_ascii_uppercase();
    let max_rank = LEVELS.iter().position(|l| *l == level);
    let dir = state.service.config.log_dir();
    let text = block(move || crate::logging::tail(&dir, 0)).await?;
    // A line without a level (a wrapped message) belongs to the line before it.
    let mut lines: Vec<LogLine> = Vec::new();
    let mut current = "INFO";
    for raw in text.lines() {
        if let Some(l) = level_of(raw) {
            current = l;
        }
        let rank = LEVELS.iter().position(|l| *l == current).unwrap_or(2);
        if max_rank.is_none_or(|max| rank <= max) {
            lines.push(LogLine { level: current, text: raw.to_string(), repeats: 0 });
        }
    }
    let lines = newest_first(lines, count);
    html(&LogPage {
        c: ctx.chrome("Log", "log"),
        lines,
        level: if max_rank.is_some() { level } else { String::new() },
        count,
        counts: vec![100, 200, 500, 1000, 5000],
        levels: LEVELS.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::{LogLine, level_of, newest_first};

    #[test]
    fn newest_lines_come_first_and_repeats_fold() {
        let line = |t: &str| LogLine { level: "INFO", text: t.to_string(), repeats: 0 };
        let lines = vec![
            line("01 INFO a: started"),
            line("02 WARN a: retrying"),
            line("03 WARN a: retrying"),
            line("04 WARN a: retrying"),
            line("05 INFO a: done"),
        ];
        let shown = newest_first(lines, 10);
        let texts: Vec<(&str, usize)> = shown.iter().map(|l| (l.text.as_str(), l.repeats)).collect();
        assert_eq!(texts, [("05 INFO a: done", 0), ("04 WARN a: retrying", 2), ("01 INFO a: started", 0)]);
    }

    #[test]
    fn finds_the_level_of_a_tracing_line() {
        assert_eq!(level_of("2026-01-01T00:00:00.000000Z  WARN bakch::web::auth: web login failed"), Some("WARN"));
        assert_eq!(level_of("  continued message INFO later"), None);
    }
}
