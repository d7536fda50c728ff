//! Clauses: the RFC rules a check enforces, each with a stable id and the quoted text.

/// One rule from an RFC (or from the reference implementation's documented behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Clause {
    /// Stable id used in reports and regressions, e.g. `rfc9293-3.5-handshake`.
    pub id: &'static str,
    /// Where the rule is written, e.g. `RFC 9293 §3.5`.
    pub source: &'static str,
    /// Link to the section.
    pub url: &'static str,
    /// The rule, quoted.
    pub text: &'static str,
}

/// A clause of a check that no observation checked: the evidence it needs never came (a
/// KeyUpdate the capture does not show, a secret no record used). A check with one does
/// not pass, whatever else it saw: missing evidence is never turned into a pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotChecked {
    /// The clause's id.
    pub clause: &'static str,
    /// What was not observed, and why.
    pub reason: String,
}

/// How the parts of one check that each exercise a clause fared: a check made of many small
/// cases (a matrix row's 96 cells) names, for every case, the clause it exercised and, when
/// the case disagreed, the clause it broke ([`crate::engine::Session::tally`]). The report
/// then classifies each failure by the clause it breaks and groups the failing cases by
/// clause, instead of labelling the whole check with its first clause; a clause whose cases
/// all agreed holds for this check even when the check fails on another clause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClauseTally {
    /// The clause.
    pub clause: Clause,
    /// How many cases exercised it.
    pub ran: usize,
    /// The cases that broke it, one line each (the check's own difference line for the case).
    pub failing: Vec<String>,
}
