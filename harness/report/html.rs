//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external
//! resources; the only links are the clauses' own, to the RFC text).
//!
//! Sections: the run (target, profile, environment, deviation file) and its counts; stale
//! deviation entries; a table by clause (with the quoted text in a `<details>`); a table by
//! check (the checks that did not pass, then the passing ones); then one section per
//! failure and per accepted deviation: its clauses with source, quoted text and link, the
//! failing step and differences, the classification (and the deviation's kind and reason),
//! the minimal counterexample ("N of M events", shrunk or not), the expected and observed
//! ladders side by side (both fit a 1280 px window), and the capture as a `data:` download
//! link beside its file name in the directory; last, the unsupported and errored checks
//! with their reasons and the clauses each left not checked (also marked `not checked`
//! beside the check in the table by clause). All text is escaped.
//!
//! A long report stays usable (tests/report_browser.rs opens one of 2,000 checks in
//! Chromium; figures in docs/PERFORMANCE.md): a clause's list of more than
//! `OPEN_LIST_MAX` (50) checks, and more than that many passing checks, are collapsed in
//! `<details>`, so the failures are on the first screen; the failure sections have
//! `content-visibility:auto`, so the browser lays out only those scrolled to.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

use super::{CheckEntry, Classification, Outcome, Report, escape};
use crate::engine::runner::RunSummary;

/// The page's style sheet (also used by the comparison page).
pub(crate) const CSS: &str = r#"
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
h3{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
code,pre{font-family:ui-monospace,monospace;font-size:.9em}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
blockquote{margin:.3em 0 .3em 1em;padding:.2em .8em;border-left:4px solid #bbb;background:#fafafa}
.pass{background:#d9f2d9}.fail{background:#f8d0d0}.accepted{background:#fdf0c4}
.unsupported{background:#e3e3f3}.error{background:#f3c6f0}
.badge{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:bold;font-size:.85em}
.counts span{margin-right:1em;padding:.2em .5em;border-radius:3px}
section{content-visibility:auto;contain-intrinsic-size:auto 1200px}
.ladders{display:flex;flex-wrap:wrap;gap:1em}
.ladders figure{margin:0;min-width:0;max-width:100%}
svg.ladder{border:1px solid #ddd;background:#fff;font-family:ui-monospace,monospace;font-size:11px;max-width:100%;height:auto}
svg .lane{stroke:#888;stroke-width:2}
svg .fr{stroke:#246;stroke-width:1.5;fill:#246}
svg .ex{stroke:#1a7f37;stroke-width:1.5;stroke-dasharray:5 3;fill:#1a7f37}
svg .hl{fill:#ffe08a;opacity:.6}
svg .tm{fill:#666}svg .lb{fill:#111}svg .nt{fill:#777;font-style:italic}
svg .xo{fill:#a00;font-weight:bold}svg .el{fill:#777}svg .lt{font-weight:bold;font-size:12px}
svg .lh{font-weight:bold}
"#;

/// The page for `report`, embedding the captures of its failures from `summary`.
pub fn render(report: &Report, summary: &RunSummary) -> String {
    render_with(report, &|file: &str| {
        let check = summary.checks.iter().find(|c| {
            file == format!("{}.pcap", c.id) || file == format!("{}.counterexample.pcap", c.id)
        })?;
        let trace = if file.ends_with(".counterexample.pcap") {
            check.counterexample_trace()?
        } else {
            &check.trace
        };
        let mut bytes = Vec::new();
        trace.write_pcap(&mut bytes).ok()?;
        Some(bytes)
    })
}

/// The page for a saved `report`, embedding the captures found in its directory `dir`.
pub fn render_from_dir(report: &Report, dir: &Path) -> String {
    render_with(report, &|file: &str| std::fs::read(dir.join(file)).ok())
}

/// The page for `report`; `capture(file name)` gives a capture's bytes to embed (`None`:
/// only the file name is shown).
pub fn render_with(report: &Report, capture: &dyn Fn(&str) -> Option<Vec<u8>>) -> String {
    let mut h = String::new();
    let title = format!("netconform certification: {}", report.target);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    run_header(&mut h, report);
    stale(&mut h, report);
    by_clause(&mut h, report);
    by_check(&mut h, report);

    let detailed: Vec<&CheckEntry> = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Accepted))
        .collect();
    if !detailed.is_empty() {
        let _ = writeln!(h, "<h2>Failures and accepted deviations</h2>");
        for c in detailed {
            failure(&mut h, c, capture);
        }
    }
    for (outcome, heading) in [
        (Outcome::Unsupported, "Unsupported checks"),
        (Outcome::Error, "Checks that could not run"),
    ] {
        let list = report.checks_with(outcome);
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<h2>{heading}</h2>\n<ul>");
        for c in list {
            let _ = write!(
                h,
                "<li><code id=\"{}\">{}</code>: {}",
                anchor(&c.id),
                escape(&c.id),
                escape(c.reason.as_deref().unwrap_or(""))
            );
            not_checked_list(&mut h, c);
            let _ = writeln!(h, "</li>");
        }
        let _ = writeln!(h, "</ul>");
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// The clauses `c` did not check, as a list (nothing when it checked them all).
fn not_checked_list(h: &mut String, c: &CheckEntry) {
    if c.not_checked.is_empty() {
        return;
    }
    let _ = write!(h, "<ul class=\"not-checked\">");
    for n in &c.not_checked {
        let _ = write!(
            h,
            "<li>not checked: clause <code>{}</code>: {}</li>",
            escape(&n.clause),
            escape(&n.reason)
        );
    }
    let _ = write!(h, "</ul>");
}

/// The HTML id of a check's section.
pub(crate) fn anchor(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("check-{clean}")
}

/// A coloured badge for an outcome.
pub(crate) fn badge(o: Outcome) -> String {
    format!("<span class=\"badge {}\">{}</span>", o.name(), o.label())
}

/// A link to a clause's text, or its source alone when it has no URL.
pub(crate) fn clause_link(source: &str, url: &str) -> String {
    if url.is_empty() {
        escape(source)
    } else {
        format!("<a href=\"{}\">{}</a>", escape(url), escape(source))
    }
}

fn run_header(h: &mut String, r: &Report) {
    let n = &r.counts;
    let _ = writeln!(
        h,
        "<p>Profile <b>{}</b>, netconform {}, report format <code>{}</code>.</p>",
        escape(&r.profile),
        escape(&r.netconform_version),
        escape(&r.format)
    );
    let _ = writeln!(
        h,
        "<p class=\"counts\"><span class=\"pass\">{} passed</span><span class=\"fail\">{} failed</span><span class=\"accepted\">{} accepted deviations</span><span class=\"unsupported\">{} unsupported</span><span class=\"error\">{} errors</span><span>{} checks</span><span>{} stale deviation entries</span><span>{} harness retries</span></p>",
        n.pass, n.fail, n.accepted, n.unsupported, n.error, n.total, n.stale, n.retries
    );
    if n.retries > 0 {
        let _ = writeln!(
            h,
            "<details><summary>Harness retries: each ruled out the harness's own loss (a frame of its own that never reached the stack), never a wrong answer</summary><ul>"
        );
        for c in r.checks.iter().filter(|c| !c.retries.is_empty()) {
            for line in &c.retries {
                let _ = writeln!(
                    h,
                    "<li><code>{}</code>: {}</li>",
                    escape(&c.id),
                    escape(line)
                );
            }
        }
        let _ = writeln!(h, "</ul></details>");
    }
    match &r.deviations_file {
        Some(f) => {
            let _ = writeln!(
                h,
                "<p>Accepted deviations from <code>{}</code>.</p>",
                escape(f)
            );
        }
        None => {
            let _ = writeln!(h, "<p>No deviation file was applied.</p>");
        }
    }
    if !r.environment.is_empty() {
        let _ = writeln!(h, "<details><summary>Environment</summary><ul>");
        for line in &r.environment {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(line));
        }
        let _ = writeln!(h, "</ul></details>");
    }
}

fn stale(h: &mut String, r: &Report) {
    if r.stale_deviations.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>Stale deviation entries</h2>\n<p>These entries matched nothing among the checks that ran: the behaviour they accept is gone or has changed. Remove or update them.</p>\n<table><tr><th>file</th><th>entry</th><th>check</th><th>difference</th><th>kind</th><th>reason</th><th>checks that ran</th></tr>"
    );
    for s in &r.stale_deviations {
        let ran: Vec<String> = s
            .checks
            .iter()
            .map(|(id, o)| format!("{} {}", escape(id), badge(*o)))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.file),
            s.entry.entry,
            escape(&s.entry.check),
            escape(&match &s.entry.step {
                Some(step) => format!("step {step:?}, {:?}", s.entry.difference),
                None => s.entry.difference.clone(),
            }),
            s.entry.kind,
            escape(&s.entry.reason),
            ran.join("<br>")
        );
    }
    let _ = writeln!(h, "</table>");
}

/// Longest list (of a clause's checks, of the passing checks) shown open; a longer one is
/// collapsed in a `<details>`, so that a long report is readable from its top and not
/// laid out link by link before it can be read.
pub(crate) const OPEN_LIST_MAX: usize = 50;

/// `<details>` around a list of `n` things: open when the list is short.
fn details_open(n: usize) -> &'static str {
    if n <= OPEN_LIST_MAX { " open" } else { "" }
}

fn by_clause(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        "<h2>By clause</h2>\n<table><tr><th>outcome</th><th>clause</th><th>source</th><th>checks</th></tr>"
    );
    for row in &r.clauses {
        let link = |(id, o): &(String, Outcome)| {
            format!(
                "<a href=\"#{}\" class=\"{}\">{}</a>{}",
                anchor(id),
                o.name(),
                escape(id),
                if row.not_checked.contains(id) {
                    " <small class=\"not-checked\">(not checked)</small>"
                } else {
                    ""
                }
            )
        };
        // A long list is collapsed, one `<details>` per outcome, the worst first.
        let checks: Vec<String> = if row.checks.len() <= OPEN_LIST_MAX {
            row.checks.iter().map(link).collect()
        } else {
            [
                Outcome::Error,
                Outcome::Fail,
                Outcome::Unsupported,
                Outcome::Accepted,
                Outcome::Pass,
            ]
            .into_iter()
            .filter_map(|outcome| {
                let links: Vec<String> = row
                    .checks
                    .iter()
                    .filter(|(_, o)| *o == outcome)
                    .map(link)
                    .collect();
                (!links.is_empty()).then(|| {
                    format!(
                        "<details><summary>{} {}</summary>{}</details>",
                        links.len(),
                        outcome.label(),
                        links.join(" ")
                    )
                })
            })
            .collect()
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td><details><summary><code>{}</code></summary><blockquote>{}</blockquote></details></td><td>{}</td><td>{}</td></tr>",
            row.outcome.name(),
            row.outcome.label(),
            escape(&row.clause.id),
            escape(&row.clause.text),
            clause_link(&row.clause.source, &row.clause.url),
            checks.join(" ")
        );
    }
    let _ = writeln!(h, "</table>");
}

/// The table by check: the checks that did not pass, in run order, then the passing ones
/// in a table of their own (collapsed when there are more than [`OPEN_LIST_MAX`]).
fn by_check(h: &mut String, r: &Report) {
    const HEADER: &str = "<table><tr><th>outcome</th><th>check</th><th>title</th><th>clauses</th><th>detail</th><th>ms</th></tr>";
    let _ = writeln!(h, "<h2>By check</h2>");
    let (passed, others): (Vec<&CheckEntry>, Vec<&CheckEntry>) =
        r.checks.iter().partition(|c| c.outcome == Outcome::Pass);
    if !others.is_empty() {
        let _ = writeln!(h, "{HEADER}");
        check_rows(h, &others);
        let _ = writeln!(h, "</table>");
    }
    if !passed.is_empty() {
        let _ = writeln!(
            h,
            "<details{}><summary>{} passed checks</summary>\n{HEADER}",
            details_open(passed.len()),
            passed.len()
        );
        check_rows(h, &passed);
        let _ = writeln!(h, "</table></details>");
    }
}

fn check_rows(h: &mut String, checks: &[&CheckEntry]) {
    for c in checks {
        let clauses: Vec<String> = c.clauses.iter().map(|k| escape(&k.id)).collect();
        let detail = match c.outcome {
            Outcome::Pass => String::new(),
            Outcome::Fail | Outcome::Accepted => {
                let class = c
                    .classification
                    .as_ref()
                    .map(|k| k.label())
                    .unwrap_or_default();
                format!(
                    "<a href=\"#{}\">{}</a>: {}",
                    anchor(&c.id),
                    escape(&class),
                    escape(c.differences.first().map(String::as_str).unwrap_or(""))
                )
            }
            Outcome::Unsupported | Outcome::Error => escape(c.reason.as_deref().unwrap_or("")),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.outcome.name(),
            c.outcome.label(),
            escape(&c.id),
            escape(&c.title),
            clauses.join("<br>"),
            detail,
            c.duration_ms
        );
    }
}

fn download(h: &mut String, file: &str, what: &str, capture: &dyn Fn(&str) -> Option<Vec<u8>>) {
    match capture(file) {
        Some(bytes) => {
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let _ = writeln!(
                h,
                "<li>{what}: <a download=\"{}\" href=\"data:application/vnd.tcpdump.pcap;base64,{data}\">download</a> ({} bytes; also <code>{}</code> in the report directory)</li>",
                escape(file),
                bytes.len(),
                escape(file)
            );
        }
        None => {
            let _ = writeln!(
                h,
                "<li>{what}: <code>{}</code> in the report directory</li>",
                escape(file)
            );
        }
    }
}

/// A check made of many cases: one row per clause (how many cases exercised it, how many
/// broke it, the breach's classification), the breaking cases listed under their clause.
fn cells_by_clause(h: &mut String, c: &CheckEntry) {
    if !c.clause_cells.iter().any(|cells| !cells.failing.is_empty()) {
        return;
    }
    let _ = writeln!(
        h,
        "<table class=\"cells-by-clause\"><tr><th>clause</th><th>cases that break it</th><th>classification</th></tr>"
    );
    for cells in &c.clause_cells {
        let class = if cells.failing.is_empty() {
            "pass"
        } else {
            "fail"
        };
        let label = cells
            .classification
            .as_ref()
            .map_or_else(|| "holds".to_string(), Classification::label);
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{} of {}</td><td>{}</td></tr>",
            escape(&cells.clause),
            cells.failing.len(),
            cells.ran,
            escape(&label)
        );
    }
    let _ = writeln!(h, "</table>");
    for cells in c
        .clause_cells
        .iter()
        .filter(|cells| !cells.failing.is_empty())
    {
        let _ = writeln!(
            h,
            "<details><summary>{} cases break <code>{}</code></summary>\n<ul>",
            cells.failing.len(),
            escape(&cells.clause)
        );
        for line in &cells.failing {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(line));
        }
        let _ = writeln!(h, "</ul></details>");
    }
}

fn failure(h: &mut String, c: &CheckEntry, capture: &dyn Fn(&str) -> Option<Vec<u8>>) {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h3>{} <code>{}</code></h3>\n<p>{}</p>",
        anchor(&c.id),
        badge(c.outcome),
        escape(&c.id),
        escape(&c.title)
    );
    if let Some(k) = &c.classification {
        let _ = write!(h, "<p><b>{}</b>", escape(&k.label()));
        match k {
            Classification::AcceptedDeviation {
                reason, entries, ..
            } => {
                let _ = write!(
                    h,
                    ": {} <small>(deviation entries {})</small>",
                    escape(reason),
                    escape(&format!("{entries:?}"))
                );
            }
            Classification::RfcViolation { keyword, clause } => {
                let _ = write!(
                    h,
                    ": clause <code>{}</code> says {}",
                    escape(clause),
                    escape(keyword)
                );
            }
            Classification::PolicyChoiceUnreviewed => {
                let _ = write!(
                    h,
                    ": no clause of this check says MUST or SHALL; review it and accept it in the deviation file, or fix it"
                );
            }
        }
        let _ = writeln!(h, "</p>");
    }
    not_checked_list(h, c);
    cells_by_clause(h, c);
    for clause in &c.clauses {
        let _ = writeln!(
            h,
            "<p>Clause <code>{}</code>, {}:</p>\n<blockquote>{}</blockquote>",
            escape(&clause.id),
            clause_link(&clause.source, &clause.url),
            escape(&clause.text)
        );
    }
    if let Some(step) = &c.step {
        let _ = writeln!(h, "<p>Step: <code>{}</code></p>", escape(step));
    }
    if !c.differences.is_empty() {
        let _ = writeln!(h, "<ul>");
        for d in &c.differences {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(d));
        }
        let _ = writeln!(h, "</ul>");
    }
    if let Some(e) = &c.expected {
        let _ = writeln!(h, "<p>Expected: <code>{}</code></p>", escape(e));
    }
    if let Some(x) = &c.counterexample {
        let _ = writeln!(
            h,
            "<details open><summary>Minimal counterexample ({}): {} of {} events, {}</summary>\n<ol>",
            escape(&x.kind),
            x.events.len(),
            x.original_events,
            if x.shrunk { "shrunk" } else { "not shrunk" }
        );
        for e in &x.events {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(e));
        }
        let _ = match &x.replay_file {
            Some(file) => writeln!(
                h,
                "</ol>\n<p>Replay with <code>netconform replay {}</code>.</p></details>",
                escape(file)
            ),
            None => writeln!(
                h,
                "</ol>\n<p>This check is a fixed script; run it again with <code>netconform certify --only {}</code>.</p></details>",
                escape(&c.id)
            ),
        };
    }
    if let Some(l) = &c.ladders {
        let _ = writeln!(
            h,
            "<div class=\"ladders\"><figure>{}</figure><figure>{}</figure></div>",
            l.expected.to_svg("expected"),
            l.observed.to_svg("observed")
        );
        let _ = writeln!(
            h,
            "<details><summary>Ladders as text</summary><pre>expected:\n{}\nobserved:\n{}</pre></details>",
            escape(&l.expected.to_ascii()),
            escape(&l.observed.to_ascii())
        );
    }
    let _ = writeln!(h, "<ul>");
    download(h, &c.artifacts.pcap, "capture", capture);
    if let Some(p) = &c.artifacts.counterexample_pcap {
        download(h, p, "capture of the counterexample", capture);
    }
    let _ = writeln!(
        h,
        "<li>trace: <code>{}</code></li>\n</ul>\n</section>",
        escape(&c.artifacts.trace)
    );
}
