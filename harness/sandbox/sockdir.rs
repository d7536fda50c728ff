//! Directories for the UNIX sockets of a stack's own processes (slirp4netns's API socket,
//! passt's frame socket), named like the namespaces so that `netconform clean` finds them.
//!
//! A directory is `/run/netconform/ncf-<pid>-<n>-<role>`: dropping the [`SocketDir`]
//! removes it with everything in it; after a killed run, [`super::clean`] (and
//! `clean_pid`, `clean_all`) remove the ones whose owner pid is gone, as they do the
//! namespaces. Where `/run` is not writable (under `unshare -rn` without real root) the
//! directory goes under the temporary directory instead.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::netns::next_id;
use super::{NETNS_PREFIX, SandboxError};

/// Where socket directories go.
pub fn sockets_root() -> PathBuf {
    let run = Path::new("/run/netconform");
    if fs::create_dir_all(run).is_ok() {
        return run.to_path_buf();
    }
    std::env::temp_dir().join("netconform")
}

/// A directory of this run's own, removed on drop.
#[derive(Debug)]
pub struct SocketDir {
    path: PathBuf,
}

impl SocketDir {
    /// Creates `ncf-<pid>-<n>-<role>` under [`sockets_root`] with permission bits `mode`
    /// (`0o1777`: a process that drops root to `nobody` may create its socket there).
    pub fn create(role: &str, mode: u32) -> Result<SocketDir, SandboxError> {
        let name = format!("{NETNS_PREFIX}{}-{}-{role}", std::process::id(), next_id());
        let path = sockets_root().join(&name);
        let err = |op: &str, source: std::io::Error| SandboxError::File {
            path: path.display().to_string(),
            op: op.to_string(),
            source,
        };
        fs::create_dir_all(&path).map_err(|e| err("create", e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| err("chmod", e))?;
        Ok(SocketDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes every socket directory whose name `remove` picks (its name starts with
/// `ncf-<pid>-`); the names removed.
pub(crate) fn clean_where(remove: &dyn Fn(&str) -> bool) -> Vec<String> {
    let Ok(entries) = fs::read_dir(sockets_root()) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.starts_with(NETNS_PREFIX) || !remove(&name) {
            continue;
        }
        removed.extend(end_daemons_of(&entry.path()));
        if fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(format!("{}", entry.path().display()));
        }
    }
    removed
}

/// Ends each daemon that wrote its pid file (`*.pid`) in `dir` and still runs with `dir` on
/// its command line (so a reused pid is never hit); what was ended. passt drops root to
/// `nobody`, which clears the parent-death signal its agent set: a run killed after passt
/// started and before the harness connected to its socket leaves it waiting for a guest
/// for ever, in a directory that is about to go.
fn end_daemons_of(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        let Some(pid) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|pid| *pid > 1)
        else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let names_dir = String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy());
        if names_dir
            && nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        {
            ended.push(format!("process {pid} (its pid file {})", path.display()));
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    /// A daemon that wrote its pid file in a directory `clean` removes is ended with it; a
    /// pid file naming a process that does not run with the directory on its command line
    /// (a reused pid) is left alone.
    #[test]
    fn clean_ends_the_daemon_of_a_directory_it_removes() {
        let dir = SocketDir::create("test", 0o755).expect("a socket directory");
        let name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name")
            .to_string();
        let log = dir.path().join("daemon.log");
        fs::write(&log, "").expect("write");
        let spawn = |arg: &Path| {
            Command::new("tail")
                .arg("-f")
                .arg(arg)
                .stdout(Stdio::null())
                .spawn()
                .expect("tail")
        };
        let mut daemon = spawn(&log);
        let mut other = spawn(Path::new("/dev/null"));
        fs::write(dir.path().join("daemon.pid"), format!("{}\n", daemon.id())).expect("write");
        fs::write(dir.path().join("reused.pid"), other.id().to_string()).expect("write");
        let removed = clean_where(&|n| n == name);
        assert!(
            removed
                .iter()
                .any(|r| r.starts_with(&format!("process {} ", daemon.id()))),
            "{removed:?}"
        );
        assert!(!dir.path().exists());
        assert_eq!(daemon.wait().expect("wait").signal(), Some(9));
        assert_eq!(
            other.try_wait().expect("try_wait"),
            None,
            "a reused pid was hit"
        );
        let _ = other.kill();
        let _ = other.wait();
    }
}
