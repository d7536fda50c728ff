//! Ladder diagrams of a failing check: what was observed, and what was expected instead.
//!
//! Two lanes, the peer (spoken for by the harness) on the left and the stack under test on
//! the right. A frame is an arrow with its normalised one-line summary (the same text as
//! the trace, [`Trace::render`](crate::trace::Trace::render): named hosts, relative
//! sequence numbers) and its time in ms; calls (`*`) and notes (`#`) are annotations beside
//! the lanes.
//!
//! - The **observed** ladder is the trace around the failure; the observation that failed
//!   (`failed_at`) is highlighted. When nothing came (`failed_at` is the end of the trace)
//!   a last highlighted row says so (the check's first difference).
//! - The **expected** ladder has the same events before the failure, then the step that
//!   should have come (the check's `expected` text): an arrow from the stack for a frame,
//!   an annotation for silence (`no frame ...`) or a call's outcome.
//!
//! Long traces are cut to the [`CONTEXT_BEFORE`] events before the failure and the
//! [`CONTEXT_AFTER`] after it; the ladder says how many were left out.
//!
//! Ladders are plain data (serde), rendered here as text ([`Ladder::to_ascii`]) and as an
//! inline SVG ([`Ladder::to_svg`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::Verdict;
use crate::engine::runner::CheckReport;
use crate::trace::{Direction, EventKind, HostNames, Trace};

use super::escape;

/// Events shown before the failing observation.
pub const CONTEXT_BEFORE: usize = 14;
/// Events shown after the failing observation.
pub const CONTEXT_AFTER: usize = 3;
/// Widest line of the text form.
pub const TEXT_WIDTH: usize = 100;
/// Longest label of the SVG form (the full text is its tooltip).
pub const SVG_LABEL_CHARS: usize = 64;

/// What one row of a ladder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// A frame from the peer (harness) to the stack.
    ToStack,
    /// A frame from the stack to the peer.
    FromStack,
    /// An application call on the stack and its result.
    Call,
    /// A note of the check.
    Note,
    /// Nothing came where the check waited (the failure at the end of the trace).
    Missing,
    /// The frame the stack should have sent.
    ExpectedFrame,
    /// What should have happened instead, when it is not a frame (silence, a call's outcome).
    ExpectedOutcome,
}

/// One row of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Time in ms since the scenario start (`0.120`), empty when unknown.
    pub time: String,
    /// What the row shows.
    pub kind: RowKind,
    /// The frame's summary, the call, the note, or what was (not) observed/expected.
    pub text: String,
    /// True for the failing observation (observed ladder) or the expected step.
    pub highlight: bool,
}

/// One ladder: a window of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    /// Events of the trace before the window, left out.
    pub elided_before: usize,
    /// Events of the trace after the window, left out.
    pub elided_after: usize,
    /// The rows shown.
    pub rows: Vec<Row>,
}

/// The observed and the expected ladder of one failing check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladders {
    /// What the stack did.
    pub observed: Ladder,
    /// What the check expected.
    pub expected: Ladder,
}

/// The ladders of `check`, when it failed at a known point: of its counterexample's last
/// failing run when it has one (a scenario check's own trace holds many scenarios), else of
/// its own trace.
pub fn ladders(check: &CheckReport) -> Option<Ladders> {
    let Verdict::Fail { differences, .. } = &check.verdict else {
        return None;
    };
    match &check.counterexample_run {
        Some(run) => ladders_of(
            &run.trace,
            &check.names,
            run.failed_at,
            run.expected.as_deref(),
            &run.differences,
        ),
        None => ladders_of(
            &check.trace,
            &check.names,
            check.failed_at?,
            check.expected.as_deref(),
            differences,
        ),
    }
}

/// The ladders of `trace`, failed at event `failed_at` where `wanted` was expected.
fn ladders_of(
    trace: &Trace,
    names: &HostNames,
    failed_at: usize,
    wanted: Option<&str>,
    differences: &[String],
) -> Option<Ladders> {
    let events = &trace.events;
    let failed_at = failed_at.min(events.len());
    let lines = event_lines(trace, names);
    let row_of = |i: usize| -> Row {
        let e = &events[i];
        let (kind, text) = match &e.kind {
            EventKind::Frame { direction, .. } => (
                match direction {
                    Direction::Sent => RowKind::ToStack,
                    Direction::Received => RowKind::FromStack,
                },
                lines[i].clone(),
            ),
            EventKind::Call { text, result } => (RowKind::Call, format!("{text} = {result}")),
            EventKind::Note(note) => (RowKind::Note, note.clone()),
        };
        Row {
            time: e.at.to_string().trim().to_string(),
            kind,
            text,
            highlight: i == failed_at,
        }
    };
    let start = failed_at.saturating_sub(CONTEXT_BEFORE);
    let end = (failed_at + 1 + CONTEXT_AFTER).min(events.len());
    let mut observed: Vec<Row> = (start..end).map(row_of).collect();
    let first_difference = differences.first().cloned().unwrap_or_default();
    if failed_at == events.len() {
        observed.push(Row {
            time: String::new(),
            kind: RowKind::Missing,
            text: if first_difference.is_empty() {
                "nothing observed".into()
            } else {
                first_difference.clone()
            },
            highlight: true,
        });
    }
    let mut expected: Vec<Row> = (start..failed_at)
        .map(|i| Row {
            highlight: false,
            ..row_of(i)
        })
        .collect();
    let wanted = wanted
        .map(str::to_string)
        .unwrap_or_else(|| "(the check did not record what it expected)".into());
    let lower = wanted.to_ascii_lowercase();
    let silence = lower.starts_with("no ") || lower.starts_with("nothing");
    let answer = failed_at == events.len() && first_difference.starts_with("expected ");
    let at_failure = events
        .get(failed_at)
        .map(|e| !matches!(e.kind, EventKind::Frame { .. }))
        .unwrap_or(false);
    expected.push(Row {
        time: events
            .get(failed_at)
            .map(|e| e.at.to_string().trim().to_string())
            .unwrap_or_default(),
        kind: if silence || answer || at_failure {
            RowKind::ExpectedOutcome
        } else {
            RowKind::ExpectedFrame
        },
        text: wanted,
        highlight: true,
    });
    Some(Ladders {
        observed: Ladder {
            elided_before: start,
            elided_after: events.len() - end,
            rows: observed,
        },
        expected: Ladder {
            elided_before: start,
            elided_after: 0,
            rows: expected,
        },
    })
}

/// The rendered line of every event without its time and direction mark (frames keep a
/// switch port's `pN`), through the trace renderer so names and relative numbers agree
/// with `<id>.trace.txt`.
fn event_lines(trace: &Trace, names: &HostNames) -> Vec<String> {
    let decoded = trace.to_json_decoded(names);
    let lines: Vec<String> = decoded
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v["line"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    trace
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let line = lines.get(i).map(String::as_str).unwrap_or("");
            let prefix = format!("{} ", e.at);
            let body = line.strip_prefix(&prefix).unwrap_or(line);
            // Drop the one-character mark and its space.
            body.get(2..).unwrap_or(body).to_string()
        })
        .collect()
}

impl Row {
    /// The lanes of the text form, and the mark before the text.
    fn lane(&self) -> (&'static str, &'static str) {
        match self.kind {
            RowKind::ToStack => ("|------->|", ""),
            RowKind::FromStack => ("|<-------|", ""),
            RowKind::ExpectedFrame => ("|<- - - -|", ""),
            RowKind::Call => ("|        |", "* "),
            RowKind::Note => ("|        |", "# "),
            RowKind::Missing => ("|   ??   |", "?? "),
            RowKind::ExpectedOutcome => ("|        |", "expected: "),
        }
    }
}

impl Ladder {
    /// The ladder as text, one row per line, at most [`TEXT_WIDTH`] columns: a `>>` margin
    /// marks the highlighted rows.
    pub fn to_ascii(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "    {:>9}  peer     stack", "time ms");
        if self.elided_before > 0 {
            let _ = writeln!(
                out,
                "    {:>9}  :        :  ({} earlier events not shown)",
                "", self.elided_before
            );
        }
        for row in &self.rows {
            let margin = if row.highlight { ">>" } else { "  " };
            let (lane, mark) = row.lane();
            let line = format!("{margin}  {:>9}  {lane}  {mark}{}", row.time, row.text);
            let _ = writeln!(out, "{}", clip(&line, TEXT_WIDTH));
        }
        if self.elided_after > 0 {
            let _ = writeln!(
                out,
                "    {:>9}  :        :  ({} later events not shown)",
                "", self.elided_after
            );
        }
        out
    }

    /// The ladder as an inline SVG element (no external references), `title` above it.
    pub fn to_svg(&self, title: &str) -> String {
        // Two ladders (592 px each and their borders, 1em apart) fit side by side in a
        // 1280 px window with a scroll bar and the page's margins. At 11 px monospace
        // (6.6 px a character) the widest time (`99999.999`) ends at TIME and a label,
        // clipped to [`SVG_LABEL_CHARS`] characters (424 px), before WIDTH.
        const ROW: usize = 20;
        const TOP: usize = 44;
        const TIME: usize = 64;
        const PEER: usize = 72;
        const STACK: usize = 150;
        const LABEL: usize = 160;
        const WIDTH: usize = 592;
        let extra = usize::from(self.elided_before > 0) + usize::from(self.elided_after > 0);
        let height = TOP + (self.rows.len() + extra) * ROW + 10;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}">"#,
            t = escape(title)
        );
        let _ = write!(
            s,
            r#"<text x="4" y="14" class="lt">{}</text><text x="{PEER}" y="34" text-anchor="middle" class="lh">peer</text><text x="{STACK}" y="34" text-anchor="middle" class="lh">stack</text>"#,
            escape(title)
        );
        let bottom = height - 6;
        let _ = write!(
            s,
            r#"<line x1="{PEER}" y1="38" x2="{PEER}" y2="{bottom}" class="lane"/><line x1="{STACK}" y1="38" x2="{STACK}" y2="{bottom}" class="lane"/>"#
        );
        let mut y = TOP;
        let elided = |s: &mut String, y: &mut usize, n: usize, when: &str| {
            let _ = write!(
                s,
                r#"<text x="{LABEL}" y="{}" class="el">({n} {when} events not shown)</text>"#,
                *y + 14
            );
            *y += ROW;
        };
        if self.elided_before > 0 {
            elided(&mut s, &mut y, self.elided_before, "earlier");
        }
        for row in &self.rows {
            let mid = y + ROW / 2;
            if row.highlight {
                let _ = write!(
                    s,
                    r#"<rect x="0" y="{y}" width="{WIDTH}" height="{ROW}" class="hl"/>"#
                );
            }
            let _ = write!(
                s,
                r#"<text x="{TIME}" y="{}" text-anchor="end" class="tm">{}</text>"#,
                y + 14,
                escape(&row.time)
            );
            let (class, from, to) = match row.kind {
                RowKind::ToStack => (Some("fr"), PEER, STACK),
                RowKind::FromStack => (Some("fr"), STACK, PEER),
                RowKind::ExpectedFrame => (Some("ex"), STACK, PEER),
                _ => (None, 0, 0),
            };
            if let Some(class) = class {
                // One element per arrow (a long report has thousands): the shaft, then the
                // head as a triangle of its own, filled (the shaft has no area to fill).
                let head = if to > from { to - 7 } else { to + 7 };
                let _ = write!(
                    s,
                    r#"<path d="M{from} {mid}H{to}M{to} {mid}L{head} {}V{}Z" class="{class}"/>"#,
                    mid - 4,
                    mid + 4
                );
            }
            let mark = match row.kind {
                RowKind::Call => "* ",
                RowKind::Note => "# ",
                RowKind::Missing => "?? ",
                RowKind::ExpectedOutcome => "expected: ",
                _ => "",
            };
            let full = format!("{mark}{}", row.text);
            let shown = clip(&full, SVG_LABEL_CHARS);
            let class = match row.kind {
                RowKind::Note => "nt",
                RowKind::Missing | RowKind::ExpectedOutcome | RowKind::ExpectedFrame => "xo",
                _ => "lb",
            };
            // The whole text is a tooltip when the label had to be cut.
            let tooltip = if shown == full {
                String::new()
            } else {
                format!("<title>{}</title>", escape(&full))
            };
            let _ = write!(
                s,
                r#"<text x="{LABEL}" y="{}" class="{class}">{tooltip}{}</text>"#,
                y + 14,
                escape(&shown)
            );
            y += ROW;
        }
        if self.elided_after > 0 {
            elided(&mut s, &mut y, self.elided_after, "later");
        }
        s.push_str("</svg>");
        s
    }
}

/// `line` cut to `width` characters, ending in `...` when cut.
pub(crate) fn clip(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut out: String = line.chars().take(width.saturating_sub(3)).collect();
    out.push_str("...");
    out
}
