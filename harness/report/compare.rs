//! One page comparing saved reports side by side (Linux beside smoltcp, say): what
//! `netconform report compare A B --out FILE` writes.
//!
//! A header per target (profile, counts), then a table with one row per check and one
//! column per target, and a table with one row per clause. Each cell is coloured by its
//! outcome and says, inline and on hover (`title`), the first difference of a failure, the
//! kind and reason of an accepted deviation, or why a check was unsupported or errored; a
//! check a target did not run shows `-`. Rows whose outcomes differ between targets are
//! marked. The page is self-contained like `report.html`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::html::{CSS, clause_link};
use super::{CheckEntry, Classification, Outcome, Report, ReportError, escape};

/// Loads each `(label, path to report.json)` and renders the comparison page.
pub fn compare_files(inputs: &[(String, PathBuf)]) -> Result<String, ReportError> {
    let mut reports = Vec::with_capacity(inputs.len());
    for (label, path) in inputs {
        reports.push((label.clone(), Report::load(path)?));
    }
    Ok(compare(&reports))
}

/// Loads each saved `report.json` and renders the comparison page, each column labelled by
/// its report's target name (`linux`, `smoltcp`; a name that repeats gets ` (2)`, ` (3)`).
pub fn compare_paths(paths: &[PathBuf]) -> Result<String, ReportError> {
    Ok(compare(&load_labelled(paths)?))
}

/// Loads each saved `report.json`, labelled by its target's name (`linux`, `smoltcp`; a
/// name that repeats gets ` (2)`, ` (3)`).
fn load_labelled(paths: &[PathBuf]) -> Result<Vec<(String, Report)>, ReportError> {
    let mut reports: Vec<(String, Report)> = Vec::with_capacity(paths.len());
    for path in paths {
        let report = Report::load(path)?;
        let mut label = report.target.clone();
        let mut n = 1;
        while reports.iter().any(|(l, _)| *l == label) {
            n += 1;
            label = format!("{} ({n})", report.target);
        }
        reports.push((label, report));
    }
    Ok(reports)
}

/// The comparison page of `(label, report)` pairs, in column order.
pub fn compare(reports: &[(String, Report)]) -> String {
    let mut h = String::new();
    let labels: Vec<&str> = reports.iter().map(|(l, _)| l.as_str()).collect();
    let title = format!("netconform comparison: {}", labels.join(" vs "));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{CSS}\n.differs td:first-child{{box-shadow:inset 4px 0 #c00}}\ntd.cell{{max-width:28em}}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    let _ = writeln!(
        h,
        "<table><tr><th>target</th><th>name</th><th>profile</th><th>netconform</th><th>pass</th><th>fail</th><th>accepted</th><th>unsupported</th><th>error</th><th>unsupported of its kind</th><th>stale entries</th></tr>"
    );
    for (label, r) in reports {
        let n = &r.counts;
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td class=\"pass\">{}</td><td class=\"fail\">{}</td><td class=\"accepted\">{}</td><td class=\"unsupported\">{}</td><td class=\"error\">{}</td><td>{} of {} ({:.1} %)</td><td>{}</td></tr>",
            escape(label),
            escape(&r.target),
            escape(&r.profile),
            escape(&r.netconform_version),
            n.pass,
            n.fail,
            n.accepted,
            n.unsupported,
            n.error,
            n.unsupported_of_its_kind(),
            n.of_its_kind(),
            n.unsupported_share(),
            n.stale
        );
    }
    let _ = writeln!(h, "</table>");
    let header: String = labels
        .iter()
        .map(|l| format!("<th>{}</th>", escape(l)))
        .collect();

    // Checks, in order of first appearance across the reports.
    let mut ids: Vec<&str> = Vec::new();
    for (_, r) in reports {
        for c in &r.checks {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
    }
    let _ = writeln!(
        h,
        "<h2>By check</h2>\n<p>A red left border marks a check whose outcome differs between targets.</p>\n<table><tr><th>check</th>{header}</tr>"
    );
    for id in ids {
        let entries: Vec<Option<&CheckEntry>> = reports.iter().map(|(_, r)| r.check(id)).collect();
        let differs = differs(entries.iter().map(|e| e.map(|c| c.outcome)));
        let _ = write!(
            h,
            "<tr{}><td><code>{}</code></td>",
            if differs { " class=\"differs\"" } else { "" },
            escape(id)
        );
        for e in entries {
            match e {
                Some(c) => {
                    let note = cell_note(c);
                    let _ = write!(
                        h,
                        "<td class=\"cell {}\" title=\"{}\"><b>{}</b>{}</td>",
                        c.outcome.name(),
                        escape(&note),
                        if c.other_kind {
                            "N/A"
                        } else {
                            c.outcome.label()
                        },
                        if note.is_empty() {
                            String::new()
                        } else {
                            format!("<br><small>{}</small>", escape(&note))
                        }
                    );
                }
                None => h.push_str("<td>-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    let _ = writeln!(h, "</table>");

    // Clauses.
    let mut clause_ids: Vec<&str> = Vec::new();
    for (_, r) in reports {
        for row in &r.clauses {
            if !clause_ids.contains(&row.clause.id.as_str()) {
                clause_ids.push(&row.clause.id);
            }
        }
    }
    let _ = writeln!(
        h,
        "<h2>By clause</h2>\n<table><tr><th>clause</th><th>source</th>{header}</tr>"
    );
    for id in clause_ids {
        let rows: Vec<_> = reports
            .iter()
            .map(|(_, r)| r.clauses.iter().find(|row| row.clause.id == id))
            .collect();
        let Some(clause) = rows.iter().flatten().next().map(|r| &r.clause) else {
            continue;
        };
        let differs = differs(rows.iter().map(|r| r.map(|row| row.outcome)));
        let _ = write!(
            h,
            "<tr{}><td><code title=\"{}\">{}</code></td><td>{}</td>",
            if differs { " class=\"differs\"" } else { "" },
            escape(&clause.text),
            escape(id),
            clause_link(&clause.source, &clause.url)
        );
        for row in rows {
            match row {
                Some(row) => {
                    let checks: Vec<String> = row
                        .checks
                        .iter()
                        .filter(|(_, o)| *o != Outcome::Pass)
                        .map(|(c, o)| format!("{c} {}", o.label()))
                        .collect();
                    let _ = write!(
                        h,
                        "<td class=\"cell {}\" title=\"{}\">{} <small>({} checks)</small></td>",
                        row.outcome.name(),
                        escape(&checks.join("\n")),
                        row.outcome.label(),
                        row.checks.len()
                    );
                }
                None => h.push_str("<td>-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

/// True when the targets that ran it disagree, or only some ran it.
fn differs(outcomes: impl Iterator<Item = Option<Outcome>>) -> bool {
    let all: Vec<Option<Outcome>> = outcomes.collect();
    all.windows(2).any(|w| w[0] != w[1])
}

/// What a cell says beyond its outcome.
fn cell_note(c: &CheckEntry) -> String {
    match (&c.outcome, &c.classification) {
        (
            Outcome::Accepted,
            Some(Classification::AcceptedDeviation {
                deviation_kind,
                reason,
                ..
            }),
        ) => format!("{deviation_kind}: {reason}"),
        (Outcome::Fail, class) => {
            let first = c.differences.first().map(String::as_str).unwrap_or("");
            match class {
                Some(k) => format!("{}: {first}", k.label()),
                None => first.to_string(),
            }
        }
        (Outcome::Unsupported | Outcome::Error, _) => c.reason.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The same comparison as a Markdown page (what `report compare --markdown FILE` writes, and
/// docs/stacks.md is): a summary row per target, then a table with a row per check and a
/// column per target, then one with a row per clause. A cell is the outcome in one word
/// (`pass`, **`FAIL`**, `accepted`, `unsupported`, `n/a` for a check of another kind of
/// device, **`ERROR`**, `-` when the target did not run it); a clause's cell adds how many
/// of its checks failed.
pub fn markdown(reports: &[(String, Report)]) -> String {
    let mut m = String::new();
    let labels: Vec<&str> = reports.iter().map(|(l, _)| l.as_str()).collect();
    let _ = writeln!(m, "# netconform: {}\n", labels.join(", "));
    let _ = writeln!(
        m,
        "| target | profile | pass | fail | accepted | unsupported | error | unsupported of its kind | slow tier, not run |"
    );
    let _ = writeln!(m, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, r) in reports {
        let n = &r.counts;
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} of {} ({:.1} %) | {} |",
            md(label),
            md(&r.profile),
            n.pass,
            n.fail,
            n.accepted,
            n.unsupported,
            n.error,
            n.unsupported_of_its_kind(),
            n.of_its_kind(),
            n.unsupported_share(),
            r.slow_not_run.len()
        );
    }
    let header: String = labels.iter().map(|l| format!(" {} |", md(l))).collect();
    let rule: String = labels.iter().map(|_| "---|").collect();
    let _ = writeln!(m, "\n## By check\n\n| check |{header}\n|---|{rule}");
    let mut ids: Vec<&str> = Vec::new();
    for (_, r) in reports {
        for c in &r.checks {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
    }
    for id in ids {
        let _ = write!(m, "| `{id}` |");
        for (_, r) in reports {
            let cell = r
                .check(id)
                .map_or("-", |c| if c.other_kind { "n/a" } else { word(c.outcome) });
            let _ = write!(m, " {cell} |");
        }
        m.push('\n');
    }
    let _ = writeln!(
        m,
        "\n## By clause\n\n| clause | source |{header}\n|---|---|{rule}"
    );
    let mut clause_ids: Vec<&str> = Vec::new();
    for (_, r) in reports {
        for row in &r.clauses {
            if !clause_ids.contains(&row.clause.id.as_str()) {
                clause_ids.push(&row.clause.id);
            }
        }
    }
    for id in clause_ids {
        let rows: Vec<_> = reports
            .iter()
            .map(|(_, r)| r.clauses.iter().find(|row| row.clause.id == id))
            .collect();
        let Some(clause) = rows.iter().flatten().next().map(|r| &r.clause) else {
            continue;
        };
        let _ = write!(m, "| `{id}` | {} |", md(&clause.source));
        for row in rows {
            let cell = match row {
                None => "-".to_string(),
                Some(row) => {
                    let failing = row
                        .checks
                        .iter()
                        .filter(|(_, o)| *o == Outcome::Fail)
                        .count();
                    match row.outcome {
                        Outcome::Fail => format!("**`FAIL`** ({failing} of {})", row.checks.len()),
                        o => word(o).to_string(),
                    }
                }
            };
            let _ = write!(m, " {cell} |");
        }
        m.push('\n');
    }
    m
}

/// An outcome as one word of a Markdown cell (failures and errors stand out).
fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "**`FAIL`**",
        Outcome::Accepted => "accepted",
        Outcome::Unsupported => "unsupported",
        Outcome::Error => "**`ERROR`**",
    }
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Loads each saved `report.json` like [`compare_paths`] and renders [`markdown`].
pub fn markdown_paths(paths: &[PathBuf]) -> Result<String, ReportError> {
    Ok(markdown(&load_labelled(paths)?))
}
