//! Small formatting helpers for pages: human sizes, relative times, HTML escaping, the file
//! tree of a backup and the stats chart (SVG drawn here, so the page needs no script).

use chrono::{DateTime, Utc};

use crate::model::backup::BackupFile;

/// `1.5 MiB`, `512 B`.
pub fn size(bytes: i64) -> String {
    crate::model::backup::human_bytes(bytes)
}

/// `3 hours ago`, `just now`, `in 5 minutes`.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let (n, future) = if secs < 0 { (-secs, true) } else { (secs, false) };
    if n < 45 {
        return if future { "in a moment".into() } else { "just now".into() };
    }
    let (count, unit) = match n {
        n if n < 3600 => ((n + 30) / 60, "minute"),
        n if n < 86_400 => ((n + 1800) / 3600, "hour"),
        n if n < 30 * 86_400 => ((n + 43_200) / 86_400, "day"),
        n if n < 365 * 86_400 => (n / (30 * 86_400), "month"),
        n => (n / (365 * 86_400), "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if future { format!("in {count} {unit}{plural}") } else { format!("{count} {unit}{plural} ago") }
}

/// What tells a target apart where its name alone may not: its alias, else the start of its id.
pub fn target_hint(alias: Option<&str>, id: &str) -> String {
    match alias {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => format!("id {}", id.chars().take(8).collect::<String>()),
    }
}

/// `3.2 s`, `4 min 10 s`, `2 h 5 min`: how long something took.
pub fn duration(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as i64;
    if s < 3600 { format!("{} min {} s", s / 60, s % 60) } else { format!("{} h {} min", s / 3600, (s % 3600) / 60) }
}

/// `2026-11-23 17:05 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A backup's files as nested `<ul>` lists with folders as `<details>`; each file links to
/// its own download.
pub fn file_tree(backup_id: &str, files: &[BackupFile]) -> String {
    let mut out = String::from("<ul class=\"tree\">");
    let mut open: Vec<String> = Vec::new();
    let mut sorted: Vec<&BackupFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in sorted {
        let parts: Vec<&str> = f.path.split('/').collect();
        let (dirs, name) = parts.split_at(parts.len() - 1);
        let common = open.iter().zip(dirs).take_while(|(a, b)| a.as_str() == **b).count();
        while open.len() > common {
            open.pop();
            out.push_str("</ul></details></li>");
        }
        for (i, d) in dirs.iter().enumerate().skip(common) {
            let full = dirs[..=i].join("/");
            out.push_str(&format!(
                "<li class=\"dir\"><details open><summary><input type=\"checkbox\" name=\"path\" value=\"{}\" \
                 form=\"select-form\" aria-label=\"Select the folder {}\"> {}/</summary><ul>",
                escape(&full),
                escape(&full),
                escape(d)
            ));
            open.push(d.to_string());
        }
        out.push_str(&format!(
            "<li class=\"file\"><input type=\"checkbox\" name=\"path\" value=\"{}\" form=\"select-form\" \
             aria-label=\"Select {}\"> <a href=\"/backups/{}/file?path={}\" download>{}</a> <span class=\"muted\">{}</span></li>",
            escape(&f.path),
            escape(&f.path),
            escape(&super::enc(backup_id)),
            escape(&super::enc(&f.path)),
            escape(name[0]),
            size(f.size)
        ));
    }
    for _ in open {
        out.push_str("</ul></details></li>");
    }
    out.push_str("</ul>");
    out
}

/// One bar group of the stats chart.
pub struct ChartRow {
    pub label: String,
    pub logical: i64,
    pub disk: i64,
}

/// A horizontal bar chart: per target, logical size against disk used, with the saving. Each
/// target takes a block of lines (name, figures, then its two bars), so the chart is narrow
/// enough to stay readable on a phone, where it is scaled to the screen's width.
pub fn usage_chart(rows: &[ChartRow]) -> String {
    let max = rows.iter().map(|r| r.logical.max(r.disk)).max().unwrap_or(0).max(1) as f64;
    let (width, row_h) = (360.0, 68.0);
    let height = 28.0 + row_h * rows.len() as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"chart-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Disk used against logical size per target</title>\
         <rect class=\"legend-logical\" x=\"0\" y=\"4\" width=\"12\" height=\"12\"/><text x=\"18\" y=\"14\">logical size</text>\
         <rect class=\"legend-disk\" x=\"130\" y=\"4\" width=\"12\" height=\"12\"/><text x=\"148\" y=\"14\">disk used</text>"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let lw = (r.logical as f64 / max * width).max(if r.logical > 0 { 1.0 } else { 0.0 });
        let dw = (r.disk as f64 / max * width).max(if r.disk > 0 { 1.0 } else { 0.0 });
        let saved = (r.logical - r.disk).max(0);
        let pct = if r.logical > 0 { saved as f64 * 100.0 / r.logical as f64 } else { 0.0 };
        let label: String = r.label.chars().take(40).collect();
        svg.push_str(&format!(
            "<g><text x=\"0\" y=\"{ty}\" class=\"chart-label\">{label}</text>\
             <text x=\"0\" y=\"{ty2}\" class=\"chart-figures\">{ls} logical, {ds} on disk, saved {pct:.0}%</text>\
             <rect class=\"bar-logical\" x=\"0\" y=\"{y1}\" width=\"{lw:.1}\" height=\"10\"><title>logical {ls}</title></rect>\
             <rect class=\"bar-disk\" x=\"0\" y=\"{y2}\" width=\"{dw:.1}\" height=\"10\"><title>disk used {ds}</title></rect></g>",
            ty = y + 12.0,
            ty2 = y + 28.0,
            y1 = y + 34.0,
            y2 = y + 46.0,
            label = escape(&label),
            ls = size(r.logical),
            ds = size(r.disk),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A target's history strip: one bar per attempt, oldest left, its height the backup's size
/// against the largest shown; a failed upload is a full-height bar of its own colour. Each bar
/// says what it is in its `<title>`.
pub fn history_strip(attempts: &[crate::service::health::Attempt], label: &str) -> String {
    const BAR: f64 = 6.0;
    const GAP: f64 = 2.0;
    const HEIGHT: f64 = 24.0;
    let max = attempts.iter().filter_map(|a| a.size).max().unwrap_or(0).max(1) as f64;
    let width = (attempts.len().max(1) as f64) * (BAR + GAP);
    let mut svg = format!(
        "<svg class=\"strip\" viewBox=\"0 0 {width} {HEIGHT}\" width=\"{width}\" height=\"{HEIGHT}\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        escape(label)
    );
    for (i, a) in attempts.iter().enumerate() {
        let x = i as f64 * (BAR + GAP);
        let (class, h, what) = match a.size {
            Some(bytes) => ("ok", (bytes as f64 / max * (HEIGHT - 2.0)).max(2.0), format!("backup, {}", size(bytes))),
            None => ("failed", HEIGHT, "failed upload".to_string()),
        };
        svg.push_str(&format!(
            "<rect class=\"{class}\" x=\"{x:.0}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{h:.1}\"><title>{} {what}</title></rect>",
            when(a.at),
            y = HEIGHT - h,
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sizes_and_times() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(200 * 1024 * 1024), "200 MiB");
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(ago(now - chrono::Duration::hours(3), now), "3 hours ago");
        assert_eq!(ago(now - chrono::Duration::seconds(5), now), "just now");
        assert_eq!(ago(now + chrono::Duration::minutes(5), now), "in 5 minutes");
        assert_eq!(ago(now - chrono::Duration::days(1), now), "1 day ago");
    }

    #[test]
    fn tree_nests_folders_and_escapes() {
        let f = |p: &str| BackupFile { path: p.into(), blob: "b".into(), size: 3, mode: 0o644 };
        let html = file_tree("id", &[f("a/x.txt"), f("a/b/<y>.txt"), f("z.txt")]);
        assert!(html.contains(" a/</summary>"));
        assert!(html.contains(" b/</summary>"));
        assert!(html.contains("&lt;y&gt;.txt"));
        // A checkbox per folder (its full path) and per file, all in the selection form.
        assert!(html.contains("name=\"path\" value=\"a/b\" form=\"select-form\""), "{html}");
        assert!(html.contains("value=\"a/b/&lt;y&gt;.txt\""));
        assert_eq!(html.matches("form=\"select-form\"").count(), 5);
        assert_eq!(html.matches("<details").count(), html.matches("</details>").count());
    }
}
