//! `makescope report`: one self-contained HTML page about a build, to open from the file
//! system. Inline CSS and SVG only: no script, no font, no image, no address of any
//! network place, so it shows the same offline and makes no request. It holds the
//! build's summary, its timeline (a lane per job slot, the critical path's lane on top,
//! the critical path's commands outlined in red), the critical path, the slowest
//! commands, time per directory, the failures with their output, the test results
//! when there are tests, and `makescope lint`'s findings when there are any (or why lint
//! could not judge the build). Elements the tests look for have ids: `timeline`,
//! `critical-path`, `slowest`, `directories`, `failures`, `tests`, `lint`.
//!
//! What it must never do: print, or name anything outside the page.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use anyhow::Result;

use super::stats::{Line, Stats};
use super::timeline::Analysis;
use super::{kind, load, name, seconds, BuildChoice, Recorded};
use crate::config::Config;
use crate::lint::{Lint, LintOptions};
use crate::paths;
use crate::util::lossy;

/// How much of a failed command's output the page shows, per stream.
pub const OUTPUT_TAIL: usize = 8 * 1024;
/// How many failures the page shows in full.
pub const FAILURES: usize = 50;
/// How many tests that did not pass the page lists.
pub const TESTS_LISTED: usize = 200;
/// How many lint findings the page lists.
pub const FINDINGS_LISTED: usize = 200;

const PALETTE: [&str; 8] = [
    "#5b8ff9", "#5ad8a6", "#f6bd16", "#9270ca", "#ff9d4d", "#269a99", "#e8684a", "#6dc8ec",
];

/// The chosen build's report page.
pub fn report(config: &Config, options: &BuildChoice) -> Result<String> {
    let recorded = load(config, options.build)?;
    let analysis = recorded.analyse()?;
    // A build lint cannot judge (untraced, interrupted) still gets its report, saying why.
    let lint = crate::lint::lint(
        config,
        &LintOptions {
            build: Some(recorded.build.id),
        },
    )
    .map_err(|e| format!("{e:#}"));
    render(&recorded, &analysis, &lint)
}

/// HTML-escape `text`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
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

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.sub{color:#666;font-family:monospace;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:10px;background:#5b8ff9}
svg text{font:10px sans-serif;fill:#444}
rect.critical{stroke:#c0392b;stroke-width:1.5}
rect.failed{stroke:#000;stroke-width:1}
.lane-critical{fill:#c0392b}
pre{background:#f6f6f6;padding:6px;max-height:300px;overflow:auto;white-space:pre-wrap}
.fail{color:#c0392b}.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
";

/// The page of a loaded, analysed build.
pub fn render(
    recorded: &Recorded,
    analysis: &Analysis,
    lint: &std::result::Result<Lint, String>,
) -> Result<String> {
    let stats = Stats::of(recorded, analysis);
    let mut page = String::with_capacity(64 * 1024 + recorded.commands.len() * 160);
    let title = format!("makescope build {}", recorded.build.id);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let argv: Vec<String> = recorded
        .build
        .argv
        .iter()
        .map(|a| lossy(a).into_owned())
        .collect();
    let _ = writeln!(
        page,
        "<h1>{}: {}</h1><div class=\"sub\">make {} — in {}</div>",
        escape(&title),
        escape(&stats.state),
        escape(&argv.join(" ")),
        escape(&lossy(&recorded.build.directory))
    );
    summary(&mut page, &stats);
    timeline(&mut page, recorded, analysis);
    critical_path(&mut page, &stats);
    slowest(&mut page, &stats.slowest);
    directories(&mut page, &stats);
    failures(&mut page, recorded)?;
    tests(&mut page, recorded);
    findings(&mut page, recorded, lint);
    page.push_str("</body></html>\n");
    Ok(page)
}

fn summary(page: &mut String, stats: &Stats) {
    let o = &stats.occupancy;
    let jobs = stats.jobs.flag();
    let cards = [
        (seconds(stats.wall_ns), "wall time".to_string()),
        (
            stats.work_commands.to_string(),
            format!("commands ({} failed)", stats.failed),
        ),
        (
            seconds((stats.user_us + stats.system_us) * 1000),
            "CPU time (user + system)".into(),
        ),
        (
            format!("{:.2}", o.parallelism()),
            format!("average parallelism ({jobs}, peak {})", o.peak),
        ),
        (
            seconds(stats.critical_ns),
            format!(
                "critical path ({:.0}% of wall)",
                100.0 * stats.critical_ns as f64 / stats.wall_ns.max(1) as f64
            ),
        ),
        (
            seconds(o.serialised_ns),
            "serialised: a slot free while a ready command waited".into(),
        ),
        (
            seconds(o.below_jobs_ns),
            format!("fewer than {jobs} running"),
        ),
    ];
    page.push_str("<div class=\"cards\" id=\"summary\">");
    for (value, what) in cards {
        let _ = write!(
            page,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(&what)
        );
    }
    page.push_str("</div>\n");
}

fn timeline(page: &mut String, recorded: &Recorded, analysis: &Analysis) {
    let width = 1200.0_f64;
    let left = 70.0_f64;
    let start = recorded.build.started_ns;
    let span = (recorded.ended_ns - start).max(1) as f64;
    let x = |ns: i64| left + (ns - start) as f64 / span * width;
    let slots = analysis.slots.values().max().map_or(0, |m| m + 1);
    let lane = (480.0 / (slots.max(1) as f64)).clamp(3.0, 16.0);
    let top = 34.0_f64;
    let critical_lane = top;
    let first_slot = top + lane + 8.0;
    let height = first_slot + lane * slots as f64 + 20.0;
    let critical: HashSet<i64> = analysis.critical.commands.iter().copied().collect();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in recorded.work() {
        let next = kinds.len();
        kinds.entry(kind(c)).or_insert(next);
    }
    let _ = writeln!(
        page,
        "<h2>Timeline</h2><div class=\"legend\">{}<span><i style=\"background:#fff;border:2px solid #c0392b\"></i>critical path</span></div>",
        kinds
            .iter()
            .map(|(k, i)| format!("<span><i style=\"background:{}\"></i>{}</span>", PALETTE[i % PALETTE.len()], escape(k)))
            .collect::<String>()
    );
    let _ = writeln!(
        page,
        "<svg id=\"timeline\" style=\"width:100%;max-width:{:.0}px;height:auto\" viewBox=\"0 0 {:.0} {height:.0}\">",
        left + width + 40.0,
        left + width + 40.0
    );
    // Time axis: ten ticks.
    for i in 0..=10 {
        let ns = start + (span * i as f64 / 10.0) as i64;
        let tx = x(ns);
        let _ = write!(
            page,
            "<line x1=\"{tx:.1}\" y1=\"14\" x2=\"{tx:.1}\" y2=\"{:.0}\" stroke=\"#eee\"/><text x=\"{tx:.1}\" y=\"11\" text-anchor=\"middle\">{}</text>",
            height - 16.0,
            seconds(ns - start)
        );
    }
    let _ = write!(
        page,
        "<text x=\"2\" y=\"{:.1}\">critical</text>",
        critical_lane + lane * 0.8
    );
    if slots > 0 {
        let _ = write!(
            page,
            "<text x=\"2\" y=\"{:.1}\">{} slots</text>",
            first_slot + 10.0,
            slots
        );
    }
    page.push('\n');
    let mut lanes = String::new();
    for c in recorded.work() {
        let Some(&slot) = analysis.slots.get(&c.id) else {
            continue;
        };
        let (x0, x1) = (x(c.started_ns), x(recorded.end_of(c)));
        let w = (x1 - x0).max(0.5);
        let fill = PALETTE[kinds.get(&kind(c)).copied().unwrap_or(0) % PALETTE.len()];
        let failed = c.state != "ok" && c.state != "running";
        let class = match (critical.contains(&c.id), failed) {
            (true, true) => " class=\"critical failed\"",
            (true, false) => " class=\"critical\"",
            (false, true) => " class=\"failed\"",
            _ => "",
        };
        let tip = escape(&format!(
            "{} — {} (#{})",
            name(c),
            seconds(recorded.duration(c)),
            c.id
        ));
        let y = first_slot + lane * slot as f64;
        let _ = writeln!(
            lanes,
            "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\"{class}><title>{tip}</title></rect>",
            (lane - 1.0).max(1.0)
        );
        if critical.contains(&c.id) {
            let _ = writeln!(
                lanes,
                "<rect class=\"lane-critical\" data-id=\"{}\" x=\"{x0:.1}\" y=\"{critical_lane:.1}\" width=\"{w:.1}\" height=\"{lane:.1}\"><title>{tip}</title></rect>",
                c.id
            );
        }
    }
    page.push_str(&lanes);
    page.push_str("</svg>\n");
}

fn lines_table(page: &mut String, id: &str, lines: &[Line], numbered: bool) {
    let _ = writeln!(page, "<table id=\"{id}\"><tr><th>{}</th><th>time</th><th>command</th><th>directory</th><th>ended</th><th>id</th></tr>", if numbered { "#" } else { "" });
    for (i, l) in lines.iter().enumerate() {
        let ended = if l.ending == "ok" {
            "ok".to_string()
        } else {
            format!("<span class=\"fail\">{}</span>", escape(&l.ending))
        };
        let _ = writeln!(
            page,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{ended}</td><td class=\"n\">{}</td></tr>",
            if numbered { (i + 1).to_string() } else { String::new() },
            seconds(l.ns),
            escape(&l.name),
            escape(&l.directory),
            l.id
        );
    }
    page.push_str("</table>\n");
}

fn critical_path(page: &mut String, stats: &Stats) {
    let _ = writeln!(
        page,
        "<h2>Critical path</h2><section id=\"critical-path\"><p>{} commands, {}: the longest chain of commands each waiting on the previous one's output. \
         With unlimited cores this build would still take this long; it took {} (make's serialisation: {}).</p>",
        stats.critical.len(),
        seconds(stats.critical_ns),
        seconds(stats.wall_ns),
        seconds(stats.occupancy.serialised_ns)
    );
    lines_table(page, "critical-path-commands", &stats.critical, true);
    page.push_str("</section>\n");
}

fn slowest(page: &mut String, lines: &[Line]) {
    page.push_str("<h2>Slowest commands</h2>\n");
    lines_table(page, "slowest", lines, false);
}

fn directories(page: &mut String, stats: &Stats) {
    let _ = writeln!(
        page,
        "<h2>Time per directory</h2><table id=\"directories\"><tr><th>directory</th><th>commands</th><th>time</th><th></th></tr>"
    );
    let most = stats.by_directory.first().map_or(1, |g| g.ns.max(1));
    for g in stats.by_directory.iter().take(40) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><span class=\"bar\" style=\"width:{:.0}px\"></span></td></tr>",
            escape(&g.name),
            g.commands,
            seconds(g.ns),
            300.0 * g.ns as f64 / most as f64
        );
    }
    if stats.by_directory.len() > 40 {
        let _ = writeln!(
            page,
            "<tr><td colspan=\"4\">… and {} more directories</td></tr>",
            stats.by_directory.len() - 40
        );
    }
    page.push_str("</table>\n");
}

/// The last `OUTPUT_TAIL` bytes of a stream, on a character boundary.
fn tail(bytes: &[u8]) -> String {
    let text = lossy(bytes);
    if text.len() <= OUTPUT_TAIL {
        return text.into_owned();
    }
    let mut cut = text.len() - OUTPUT_TAIL;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &text[cut..])
}

fn failures(page: &mut String, recorded: &Recorded) -> Result<()> {
    let failed: Vec<_> = recorded
        .work()
        .filter(|c| c.state != "ok" && c.state != "running")
        .collect();
    let _ = writeln!(page, "<h2>Failures</h2><section id=\"failures\">");
    if failed.is_empty() {
        page.push_str("<p>No command failed.</p>");
    }
    for c in failed.iter().take(FAILURES) {
        let output = recorded.store.output(c.id)?;
        let _ = writeln!(
            page,
            "<h3 class=\"fail\">{} — {} (#{}, {})</h3>",
            escape(&name(c)),
            escape(&super::ending(c)),
            c.id,
            escape(&recorded.directory(&c.directory))
        );
        for (stream, bytes) in [("stderr", &output.stderr), ("stdout", &output.stdout)] {
            if !bytes.is_empty() {
                let _ = writeln!(
                    page,
                    "<div>{stream}</div><pre>{}</pre>",
                    escape(&tail(bytes))
                );
            }
        }
    }
    if failed.len() > FAILURES {
        let _ = writeln!(
            page,
            "<p>… and {} more: <code>makescope log --failed</code></p>",
            failed.len() - FAILURES
        );
    }
    page.push_str("</section>\n");
    Ok(())
}

fn tests(page: &mut String, recorded: &Recorded) {
    let tests: Vec<_> = recorded
        .commands
        .iter()
        .filter(|c| c.test_name.is_some())
        .collect();
    if tests.is_empty() {
        return;
    }
    let mut results: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tests {
        *results
            .entry(t.test_result.clone().unwrap_or_else(|| "?".into()))
            .or_default() += 1;
    }
    let _ = writeln!(
        page,
        "<h2>Tests</h2><section id=\"tests\"><p>{} tests: {}</p><table>",
        tests.len(),
        escape(
            &results
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    );
    let not_passed: Vec<_> = tests
        .iter()
        .filter(|t| {
            !matches!(
                t.test_result.as_deref(),
                Some("PASS" | "XFAIL" | "UNSUPPORTED")
            )
        })
        .collect();
    for t in not_passed.iter().take(TESTS_LISTED) {
        let _ = writeln!(
            page,
            "<tr><td class=\"fail\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(t.test_result.as_deref().unwrap_or("?")),
            escape(t.test_name.as_deref().unwrap_or_default()),
            escape(&recorded.directory(&t.directory)),
            t.id
        );
    }
    page.push_str("</table></section>\n");
}

/// Lint's findings: the counts by kind, then each finding with the line to add; or the
/// one line saying why lint could not judge this build. Nothing when there are none.
fn findings(page: &mut String, recorded: &Recorded, lint: &std::result::Result<Lint, String>) {
    let lint = match lint {
        Ok(lint) if lint.findings.is_empty() => return,
        Ok(lint) => lint,
        Err(why) => {
            let _ = writeln!(
                page,
                "<h2>Lint</h2><section id=\"lint\"><p>Not judged: {}</p></section>",
                escape(why)
            );
            return;
        }
    };
    let top = &recorded.build.directory;
    let show = |path: &[u8]| -> String {
        let shown = paths::relative(path, top, 3).unwrap_or_else(|| path.to_vec());
        lossy(&shown).into_owned()
    };
    let counts: Vec<String> = lint
        .counts()
        .into_iter()
        .map(|(k, n)| format!("{n} {}", k.name()))
        .collect();
    let _ = writeln!(
        page,
        "<h2>Lint</h2><section id=\"lint\"><p>{}{}: <code>makescope lint</code> for all of them.</p><ul>",
        escape(&counts.join(", ")),
        if lint.races() > 0 {
            " (the races among them can break a parallel build)"
        } else {
            ""
        }
    );
    for f in lint.findings.iter().take(FINDINGS_LISTED) {
        let (sentence, fix) = f.describe(&show);
        let class = if f.kind.is_race() {
            " class=\"fail\""
        } else {
            ""
        };
        let _ = write!(page, "<li{class}>{}", escape(&sentence));
        if let Some(fix) = fix {
            let _ = write!(page, "<br><code>add: {}</code>", escape(&fix));
        }
        page.push_str("</li>\n");
    }
    if lint.findings.len() > FINDINGS_LISTED {
        let _ = writeln!(
            page,
            "<li>… and {} more</li>",
            lint.findings.len() - FINDINGS_LISTED
        );
    }
    page.push_str("</ul></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_character_boundary() {
        let long = "é".repeat(OUTPUT_TAIL);
        let t = tail(long.as_bytes());
        assert!(t.starts_with('…') && t.len() <= OUTPUT_TAIL + 4);
        assert_eq!(tail(b"short"), "short");
    }
}
