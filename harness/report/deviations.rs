//! Accepted deviations: per-target TOML files of failures a reviewer has accepted, with a
//! reason, and the check that flags entries which no longer match anything (stale).
//!
//! The format is documented in `deviations/README.md`; in short:
//!
//! ```toml
//! [[accept]]
//! check = "tcp.timer.*"            # exact check id, or a prefix ending in `*`
//! step = "retransmission"           # optional: only failures whose step contains this
//! difference = "rto: expected 1000" # substring of a difference line (or of a step alone)
//! kind = "policy"                   # or "violation"
//! reason = "smoltcp's minimum RTO is 1 s; RFC 6298 leaves the floor to the implementation"
//! ```
//!
//! Applying a file to a run ([`Deviations::judge`]):
//! - a failed check is **accepted** when every one of its difference lines is matched by
//!   some entry for it, or, for a failure that is its step alone (no difference lines), when
//!   an entry for it matches the step: an entry accepting one difference (or matching the
//!   step) never hides another difference;
//! - an entry for a check that ran and whose text matched nothing there (the check passed,
//!   or failed differently) is **stale**;
//! - an entry none of whose checks ran is not judged.
//!
//! Failures nobody accepted are classified by the keywords of their clauses
//! ([`classify`]): a clause quoting `MUST`, `MUST NOT`, `SHALL`, `SHALL NOT` or `REQUIRED`
//! (RFC 2119; for IEEE sources also the lower-case `shall` they use) makes the failure an
//! RFC violation; else a clause quoting `SHOULD` or `MAY` makes it a policy choice nobody
//! has reviewed yet; else (keyword-free normative text only) an RFC violation of that text.
//!
//! Nothing here panics on a file's content: every problem is a [`DeviationError`] naming the
//! file and the entry.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Clause;

/// Why a deviation is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviationKind {
    /// A choice the RFC leaves open (timer values, limits).
    Policy,
    /// Breaks an RFC MUST, accepted knowingly.
    Violation,
}

impl fmt::Display for DeviationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviationKind::Policy => "policy",
            DeviationKind::Violation => "violation",
        })
    }
}

/// One `[[accept]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    /// Position of the entry in its file, from 1.
    pub entry: usize,
    /// Check id, or a prefix ending in `*`.
    pub check: String,
    /// Only failures whose step contains this text (optional): narrows an entry whose
    /// `difference` alone would also match another step's failure (`nothing arrived
    /// within` is every missing frame's difference line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Substring of one difference line (or of the step, for a failure that has none).
    pub difference: String,
    /// Policy or violation.
    pub kind: DeviationKind,
    /// Why it is accepted.
    pub reason: String,
}

impl Deviation {
    /// True when the entry's `check` names `id` (exactly, or by its `*` prefix).
    pub fn covers_check(&self, id: &str) -> bool {
        match self.check.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => self.check == id,
        }
    }

    /// True when the entry's text occurs in `line`.
    pub fn matches_text(&self, line: &str) -> bool {
        line.contains(&self.difference)
    }

    /// True when the entry applies to a failure at `step`: it has no `step` key, or its
    /// `step` occurs in it.
    pub fn covers_step(&self, step: &str) -> bool {
        self.step.as_ref().is_none_or(|s| step.contains(s.as_str()))
    }

    /// The entry's texts as reports print them: `difference "..."`, preceded by
    /// `step "...", ` when it has a step.
    pub fn texts(&self) -> String {
        match &self.step {
            Some(step) => format!("step {step:?}, difference {:?}", self.difference),
            None => format!("difference {:?}", self.difference),
        }
    }
}

/// A loaded deviation file (or none: [`Deviations::none`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deviations {
    /// The file the entries came from (`None` when there was no file).
    pub origin: Option<PathBuf>,
    /// The entries, in file order.
    pub entries: Vec<Deviation>,
}

/// Loading a deviation file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviationError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or not of the expected shape.
    #[error("{path}: not a valid deviation file: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// One entry is wrong.
    #[error("{path}: entry {entry} (check {check:?}): {problem}")]
    Entry {
        /// The file.
        path: String,
        /// Position of the entry, from 1.
        entry: usize,
        /// The entry's `check`, as written (empty when missing).
        check: String,
        /// What is wrong with it.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    accept: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    check: Option<String>,
    step: Option<String>,
    difference: Option<String>,
    kind: Option<String>,
    reason: Option<String>,
}

/// The file name for `target`'s deviations: `<target>.toml`, with every character other
/// than ASCII letters, digits, `-`, `_` and `.` replaced by `_` (so `external:lwip.toml`
/// reads `external_lwip.toml`).
pub fn file_name_for(target: &str) -> String {
    let stem: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.toml")
}

impl Deviations {
    /// No accepted deviations.
    pub fn none() -> Self {
        Deviations::default()
    }

    /// Parses `text`; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, DeviationError> {
        let path = origin.display().to_string();
        let raw: RawFile = toml::from_str(text).map_err(|e| DeviationError::Syntax {
            path: path.clone(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut entries = Vec::with_capacity(raw.accept.len());
        for (i, e) in raw.accept.into_iter().enumerate() {
            let entry = i + 1;
            let check = e.check.clone().unwrap_or_default();
            let bad = |problem: String| DeviationError::Entry {
                path: path.clone(),
                entry,
                check: check.clone(),
                problem,
            };
            if check.trim().is_empty() {
                return Err(bad("`check` is missing or empty".into()));
            }
            if check.strip_suffix('*').unwrap_or(&check).contains('*') {
                return Err(bad("`*` may only end the `check` pattern".into()));
            }
            let step = match e.step {
                Some(s) if s.is_empty() => {
                    return Err(bad(
                        "`step` is empty (leave it out to match any step)".into()
                    ));
                }
                s => s,
            };
            let difference = match e.difference {
                Some(d) if !d.is_empty() => d,
                _ => return Err(bad("`difference` is missing or empty".into())),
            };
            let kind = match e.kind.as_deref() {
                Some("policy") => DeviationKind::Policy,
                Some("violation") => DeviationKind::Violation,
                Some(other) => {
                    return Err(bad(format!(
                        "unknown kind {other:?}: expected \"policy\" or \"violation\""
                    )));
                }
                None => return Err(bad("`kind` is missing".into())),
            };
            let reason = match e.reason {
                Some(r) if !r.trim().is_empty() => r,
                _ => return Err(bad("`reason` is missing or empty".into())),
            };
            entries.push(Deviation {
                entry,
                check,
                step,
                difference,
                kind,
                reason,
            });
        }
        Ok(Deviations {
            origin: Some(origin.to_path_buf()),
            entries,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, DeviationError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeviationError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Deviations::parse(&text, path)
    }

    /// Reads `dir/<target>.toml` (see [`file_name_for`]); no file means no deviations.
    pub fn load_for_target(dir: &Path, target: &str) -> Result<Self, DeviationError> {
        let path = dir.join(file_name_for(target));
        if !path.exists() {
            return Ok(Deviations::none());
        }
        Deviations::load(&path)
    }

    /// Checks every entry names at least one of `known` check ids (the catalogue's).
    pub fn check_ids(&self, known: &[&str]) -> Result<(), DeviationError> {
        for e in &self.entries {
            if !known.iter().any(|id| e.covers_check(id)) {
                return Err(DeviationError::Entry {
                    path: self.origin_name(),
                    entry: e.entry,
                    check: e.check.clone(),
                    problem: "no check in the catalogue has this id".into(),
                });
            }
        }
        Ok(())
    }

    /// The origin as text, for reports (`(none)` without a file).
    pub fn origin_name(&self) -> String {
        self.origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".into())
    }

    /// The entries that accept the failure of check `id` with `step` and `differences`:
    /// `Some(entries used)` when the failure is accepted (every difference line matched by
    /// an entry; with no difference lines, an entry matching the step), `None` otherwise;
    /// and, apart from that, every entry whose text matched anything, the step included
    /// (for the stale check).
    pub fn judge(&self, id: &str, step: &str, differences: &[String]) -> Judgement {
        let mine: Vec<&Deviation> = self
            .entries
            .iter()
            .filter(|e| e.covers_check(id) && e.covers_step(step))
            .collect();
        let mut matched: Vec<usize> = Vec::new();
        let mut note = |e: &Deviation| {
            if !matched.contains(&e.entry) {
                matched.push(e.entry);
            }
        };
        for e in &mine {
            if e.matches_text(step) || differences.iter().any(|d| e.matches_text(d)) {
                note(e);
            }
        }
        // The step is the whole failure only when it has no difference lines; otherwise an
        // entry matching the step says nothing about which differences it accepts, and each
        // difference line must be matched on its own.
        let accepted_by = if differences.is_empty() {
            mine.iter()
                .find(|e| e.matches_text(step))
                .map(|e| vec![(*e).clone()])
        } else {
            let mut used: Vec<Deviation> = Vec::new();
            let mut all = true;
            for d in differences {
                match mine.iter().find(|e| e.matches_text(d)) {
                    Some(e) => {
                        if !used.iter().any(|u| u.entry == e.entry) {
                            used.push((*e).clone());
                        }
                    }
                    None => all = false,
                }
            }
            all.then_some(used)
        };
        Judgement {
            accepted_by,
            matched,
        }
    }
}

/// What the deviation file says about one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The entries that accept it, or `None` when it stays a failure.
    pub accepted_by: Option<Vec<Deviation>>,
    /// Every entry (by number) whose text matched the step or a difference line.
    pub matched: Vec<usize>,
}

/// How an unaccepted failure is classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Classification {
    /// A reviewer accepted it in the deviation file.
    AcceptedDeviation {
        /// Policy or violation (of the first accepting entry; see `entries`).
        deviation_kind: DeviationKind,
        /// The reason(s) given, joined with `; `.
        reason: String,
        /// The accepting entries' numbers in the file.
        entries: Vec<usize>,
    },
    /// A clause it enforces quotes a MUST-level keyword, or every clause is normative text
    /// without any RFC 2119 keyword.
    RfcViolation {
        /// The keyword (`MUST NOT`, `MUST`, `SHALL NOT`, `SHALL`, `REQUIRED`) of the first
        /// clause that has one, or [`NORMATIVE_TEXT`].
        keyword: String,
        /// The clause it was found in.
        clause: String,
    },
    /// No clause quotes a MUST-level keyword and one leaves the choice open (SHOULD, MAY).
    PolicyChoiceUnreviewed,
}

impl Classification {
    /// Short text for tables: `accepted deviation (policy)`, `RFC violation (MUST)`,
    /// `policy choice (unreviewed)`.
    pub fn label(&self) -> String {
        match self {
            Classification::AcceptedDeviation { deviation_kind, .. } => {
                format!("accepted deviation ({deviation_kind})")
            }
            Classification::RfcViolation { keyword, .. } => format!("RFC violation ({keyword})"),
            Classification::PolicyChoiceUnreviewed => "policy choice (unreviewed)".into(),
        }
    }
}

/// The MUST-level keyword in `clause`'s text, if any: upper-case RFC 2119 keywords as whole
/// words, and for IEEE sources the lower-case `shall` as well.
pub fn must_keyword(clause: &Clause) -> Option<&'static str> {
    let words: Vec<&str> = clause
        .text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let ieee = clause.source.starts_with("IEEE");
    let pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    let has = |w: &str| words.contains(&w);
    if pair("MUST", "NOT") {
        Some("MUST NOT")
    } else if has("MUST") {
        Some("MUST")
    } else if pair("SHALL", "NOT") || (ieee && pair("shall", "not")) {
        Some("SHALL NOT")
    } else if has("SHALL") || (ieee && has("shall")) {
        Some("SHALL")
    } else if has("REQUIRED") {
        Some("REQUIRED")
    } else {
        None
    }
}

/// Whether `clause` quotes an RFC 2119 keyword below MUST (`SHOULD`, `SHOULD NOT`,
/// `RECOMMENDED`, `MAY`, `OPTIONAL`; upper case, whole words): the RFC leaves the choice open.
pub fn leaves_open(clause: &Clause) -> bool {
    clause
        .text
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| matches!(w, "SHOULD" | "RECOMMENDED" | "MAY" | "OPTIONAL"))
}

/// The keyword recorded for a failure against normative text that quotes no RFC 2119
/// keyword at all (RFC 9293 §3.10.7's event processing is written that way).
pub const NORMATIVE_TEXT: &str = "normative text";

/// Classifies a failure nobody accepted by the keywords of its clauses: a MUST-level
/// keyword makes it an RFC violation; else a clause that leaves the choice open (SHOULD,
/// MAY) makes it a policy choice; else, when every clause is keyword-free normative text
/// (the protocol's own processing rules), it is a violation of that text.
pub fn classify(clauses: &[Clause]) -> Classification {
    if let Some(violation) = clauses.iter().find_map(|c| {
        must_keyword(c).map(|k| Classification::RfcViolation {
            keyword: k.to_string(),
            clause: c.id.to_string(),
        })
    }) {
        return violation;
    }
    match clauses.first() {
        Some(first) if !clauses.iter().any(leaves_open) => Classification::RfcViolation {
            keyword: NORMATIVE_TEXT.to_string(),
            clause: first.id.to_string(),
        },
        _ => Classification::PolicyChoiceUnreviewed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Deviations {
        Deviations::parse(text, Path::new("deviations/test.toml")).expect("valid file")
    }

    fn accepted(d: &Deviations, id: &str, step: &str, differences: &[&str]) -> Option<Vec<usize>> {
        let differences: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
        d.judge(id, step, &differences)
            .accepted_by
            .map(|entries| entries.iter().map(|e| e.entry).collect())
    }

    /// An entry that matches a failure's step accepts it only when the step is the whole
    /// failure; with difference lines, each one must be matched by an entry.
    #[test]
    fn an_entry_matching_the_step_does_not_hide_an_unmatched_difference() {
        let d = file(
            r#"
[[accept]]
check = "tcp.matrix.v4.listen"
difference = "ACK in LISTEN"
kind = "violation"
reason = "step"
"#,
        );
        let step = "LISTEN row of the matrix (ACK in LISTEN)";
        let judgement = d.judge(
            "tcp.matrix.v4.listen",
            step,
            &["tcp.seq: expected 7777, observed 0".to_string()],
        );
        assert_eq!(judgement.accepted_by, None);
        // It matched the step, so it is not stale.
        assert_eq!(judgement.matched, vec![1]);
        // A failure that is its step alone is accepted by it.
        assert_eq!(
            accepted(&d, "tcp.matrix.v4.listen", step, &[]),
            Some(vec![1])
        );
        // Every difference line matched: accepted, by the entries that matched them.
        let both = file(
            r#"
[[accept]]
check = "tcp.matrix.v4.listen"
difference = "ACK in LISTEN"
kind = "violation"
reason = "step"

[[accept]]
check = "tcp.matrix.v4.*"
difference = "tcp.seq: expected 7777"
kind = "violation"
reason = "seq"
"#,
        );
        assert_eq!(
            accepted(
                &both,
                "tcp.matrix.v4.listen",
                step,
                &["tcp.seq: expected 7777, observed 0"]
            ),
            Some(vec![2])
        );
        assert_eq!(
            accepted(
                &both,
                "tcp.matrix.v4.listen",
                step,
                &[
                    "tcp.seq: expected 7777, observed 0",
                    "tcp.flags: expected R, observed R."
                ]
            ),
            None
        );
    }

    /// The smoltcp file's entry for `tcp.closed-port.syn` accepts the missing RST-ACK it is
    /// about, and not a missing ARP request (the same difference line at another step).
    #[test]
    fn the_smoltcp_closed_port_entry_accepts_only_the_missing_rst() {
        let d = Deviations::parse(
            include_str!("../../deviations/smoltcp.toml"),
            Path::new("deviations/smoltcp.toml"),
        )
        .expect("deviations/smoltcp.toml parses");
        let id = "tcp.closed-port.syn";
        let nothing = ["nothing arrived within 1000.000 ms"];
        assert!(
            accepted(&d, id, "stack refuses the SYN (RST-ACK)", &nothing).is_some(),
            "the missing RST-ACK is the accepted deviation"
        );
        let judgement = d.judge(
            id,
            "stack resolves the peer (ARP request for 10.77.0.1)",
            &[nothing[0].to_string()],
        );
        assert_eq!(
            judgement.accepted_by, None,
            "a missing ARP request stays a failure"
        );
        assert!(
            judgement.matched.is_empty(),
            "and the entry did not match it"
        );
        // A wrong RST-ACK is not a missing one.
        assert_eq!(
            accepted(
                &d,
                id,
                "stack refuses the SYN (RST-ACK)",
                &["tcp.ack: expected 1073741825, observed 0"]
            ),
            None
        );
    }

    #[test]
    fn an_empty_step_key_is_refused() {
        let e = Deviations::parse(
            "[[accept]]\ncheck = \"arp.probe\"\nstep = \"\"\ndifference = \"x\"\nkind = \"policy\"\nreason = \"r\"\n",
            Path::new("deviations/bad.toml"),
        )
        .expect_err("an empty step");
        assert_eq!(
            e.to_string(),
            "deviations/bad.toml: entry 1 (check \"arp.probe\"): `step` is empty (leave it out to \
             match any step)"
        );
    }
}
