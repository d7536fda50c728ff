//! The findings directory: what a stack target records of every disagreement, so that a
//! stack with many known RFC violations does not stop the fuzzer and a violation hit a
//! million times is one entry.
//!
//! When the environment variable [`FINDINGS_ENV`] names a directory, each finding of a
//! stack target is filed under `DIR/<target>/<group>/`, `<group>` being the slug of its
//! group ([`super::Group`]: the clause it breaks, the model's state before the failing
//! event, what differed):
//!
//! - `group.txt`: the group, its classification and the first finding's differences;
//! - `first`: the first input that fell in the group (never replaced);
//! - `smallest`: the smallest input so far (replaced, by a rename, when a smaller one comes);
//! - `count-<pid>`: how many inputs this process filed in the group, rewritten at every
//!   finding up to [`EXACT_UP_TO`], then every [`COUNT_EVERY`] (the count of a process
//!   that ends in between is short by less than that: libFuzzer ends with `exit`).
//!
//! Several processes may share one directory (ci/fuzz-overnight runs one per target;
//! libFuzzer's fork mode several per target): `first` is created only if absent, counts are
//! per process, and [`summarise`] adds them up. Without the variable nothing is written.
//! Nothing is read back while fuzzing but the size of a group's `smallest` when this
//! process first meets the group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The environment variable naming the findings directory.
pub const FINDINGS_ENV: &str = "NETCONFORM_FINDINGS";
/// A group's count file is rewritten at every finding up to this count ...
pub const EXACT_UP_TO: u64 = 64;
/// ... and then every this many.
pub const COUNT_EVERY: u64 = 64;

/// What this process knows of one group.
#[derive(Debug, Default)]
struct Seen {
    count: u64,
    smallest: usize,
}

/// Files findings in one directory; the process has one, from [`FINDINGS_ENV`]
/// ([`record`]).
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    groups: BTreeMap<String, Seen>,
}

static RECORDER: Mutex<Option<Option<Recorder>>> = Mutex::new(None);

/// The slug of a group key: ASCII letters, digits, `-` and `.` kept, runs of anything else
/// one `_`, at most 120 characters.
pub fn slug(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.truncate(120);
    out.trim_matches('_').to_string()
}

/// Files one finding in the process's findings directory ([`Recorder::record`]); does
/// nothing when [`FINDINGS_ENV`] is not set.
pub fn record(target: &str, key: &str, about: &dyn Fn() -> String, input: &[u8]) {
    let mut guard = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    let recorder = guard.get_or_insert_with(|| std::env::var_os(FINDINGS_ENV).map(Recorder::new));
    if let Some(recorder) = recorder.as_mut() {
        recorder.record(target, key, about, input);
    }
}

impl Recorder {
    /// A recorder filing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Recorder {
        Recorder {
            dir: dir.into(),
            groups: BTreeMap::new(),
        }
    }

    /// Files one finding of `target` in group `key` (slugged for its directory), with
    /// `about` (the group's key on the first line, then its description and the finding's
    /// differences; asked for once per group) and its `input`. A file that cannot be
    /// written is reported on stderr when the group is first met and otherwise ignored (the
    /// fuzzer goes on).
    pub fn record(&mut self, target: &str, key: &str, about: &dyn Fn() -> String, input: &[u8]) {
        let dir = self.dir.join(target).join(slug(key));
        let fresh = !self.groups.contains_key(key);
        let seen = self.groups.entry(key.to_string()).or_default();
        if fresh {
            if let Err(e) = open_group(&dir, about, input, seen) {
                eprintln!(
                    "netconform: cannot record a finding in {}: {e}",
                    dir.display()
                );
            }
        } else if input.len() < seen.smallest {
            seen.smallest = input.len();
            let _ = replace(&dir.join("smallest"), input);
        }
        seen.count += 1;
        if seen.count < EXACT_UP_TO || seen.count.is_multiple_of(COUNT_EVERY) {
            let name = format!("count-{}", std::process::id());
            let _ = replace(&dir.join(name), seen.count.to_string().as_bytes());
        }
    }
}

/// The first time this process meets a group: its directory, `group.txt` and `first` when
/// nobody wrote them yet, and `smallest` unless the one on disk is smaller.
fn open_group(
    dir: &Path,
    about: &dyn Fn() -> String,
    input: &[u8],
    seen: &mut Seen,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let create = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
        {
            Ok(mut f) => std::io::Write::write_all(&mut f, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    };
    create("group.txt", about().as_bytes())?;
    create("first", input)?;
    let on_disk = std::fs::metadata(dir.join("smallest")).map(|m| m.len() as usize);
    match on_disk {
        Ok(size) if size <= input.len() => seen.smallest = size,
        _ => {
            seen.smallest = input.len();
            replace(&dir.join("smallest"), input)?;
        }
    }
    Ok(())
}

/// Writes `path` whole: to a temporary file beside it, then renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// One group of a findings directory, as [`summarise`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOnDisk {
    /// The stack target.
    pub target: String,
    /// The group's directory.
    pub dir: PathBuf,
    /// The first line of `group.txt` (the group key).
    pub key: String,
    /// The rest of `group.txt`.
    pub about: String,
    /// Findings counted, over every process.
    pub count: u64,
    /// Size of `first`, in bytes.
    pub first_len: u64,
    /// Size of `smallest`, in bytes.
    pub smallest_len: u64,
}

/// Every group under `dir` (`DIR/<target>/<group>/`), ordered by target, then by count
/// (most first), then key.
pub fn summarise(dir: &Path) -> std::io::Result<Vec<GroupOnDisk>> {
    let mut out = Vec::new();
    for target in sorted_dirs(dir)? {
        let target_name = file_name(&target);
        for group in sorted_dirs(&target)? {
            let text = std::fs::read_to_string(group.join("group.txt")).unwrap_or_default();
            let (key, about) = text.split_once('\n').unwrap_or((text.as_str(), ""));
            let mut count = 0;
            for entry in std::fs::read_dir(&group)?.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("count-") && !name.contains(".tmp") {
                    let n = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    count += n.trim().parse::<u64>().unwrap_or(0);
                }
            }
            let len = |name: &str| std::fs::metadata(group.join(name)).map_or(0, |m| m.len());
            out.push(GroupOnDisk {
                target: target_name.clone(),
                key: key.to_string(),
                about: about.trim_end().to_string(),
                count,
                first_len: len("first"),
                smallest_len: len("smallest"),
                dir: group,
            });
        }
    }
    out.sort_by(|a, b| {
        (
            a.target.as_str(),
            std::cmp::Reverse(a.count),
            a.key.as_str(),
        )
            .cmp(&(
                b.target.as_str(),
                std::cmp::Reverse(b.count),
                b.key.as_str(),
            ))
    });
    Ok(out)
}

fn sorted_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_the_clause_and_state_readable() {
        assert_eq!(
            slug("rfc5961-4.2 in ESTABLISHED: no segment where the model sends challenge ACK"),
            "rfc5961-4.2_in_ESTABLISHED_no_segment_where_the_model_sends_challenge_ACK"
        );
        assert!(slug(&"x/".repeat(200)).len() <= 120);
    }
}
