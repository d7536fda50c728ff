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
        if name.starts_with(NETNS_PREFIX)
            && remove(&name)
            && fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(format!("{}", entry.path().display()));
        }
    }
    removed
}
