//! Network namespaces: created with `unshare(CLONE_NEWNET)` on a dedicated thread, named,
//! bind-mounted on `/run/netns/<name>` and removed on drop.
//!
//! The thread that created a namespace stays inside it as the namespace's **worker**: every
//! [`Namespace::run`] call hands it a closure over a channel. That is cheaper than spawning a
//! thread and calling `setns` per call (see the `run_vs_spawn` figures in the tests: a
//! round trip to the worker costs a few µs, a fresh thread with `setns` tens of µs).
//!
//! When the bind mount is impossible (e.g. under `unshare -rn` without real root, where
//! `/run` is not writable), the namespace is **anonymous**: it lives as long as the worker
//! thread, the kept fd and the sockets created inside it, and `ip netns exec` cannot see it.
//! [`Namespace::path`] is then `None`.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{NETNS_PREFIX, SandboxError};

/// Where named namespaces are bind-mounted (the `ip netns` convention).
pub fn netns_dir() -> &'static Path {
    Path::new("/run/netns")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process (namespace and interface names use it).
pub(crate) fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

type Job = Box<dyn FnOnce() + Send>;

/// One network namespace owned by the harness; removed on drop (also while unwinding).
pub struct Namespace {
    name: String,
    path: Option<PathBuf>,
    anonymous_reason: Option<String>,
    fd: OwnedFd,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

fn ns_err(namespace: &str, op: impl Into<String>, e: impl Into<std::io::Error>) -> SandboxError {
    SandboxError::Namespace {
        namespace: namespace.to_string(),
        op: op.into(),
        source: e.into(),
    }
}

fn errno_io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Bind-mounts the calling thread's network namespace on `/run/netns/<name>`.
fn bind_mount_current(name: &str) -> Result<PathBuf, SandboxError> {
    let dir = netns_dir();
    fs::create_dir_all(dir).map_err(|e| ns_err(name, format!("mkdir {}", dir.display()), e))?;
    let path = dir.join(name);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| ns_err(name, format!("create {}", path.display()), e))?;
    if let Err(e) = nix::mount::mount(
        Some("/proc/thread-self/ns/net"),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        let _ = fs::remove_file(&path);
        return Err(ns_err(
            name,
            format!("bind mount on {}", path.display()),
            errno_io(e),
        ));
    }
    Ok(path)
}

/// Unmounts and unlinks one `/run/netns` entry.
fn remove_mount(path: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(errno_io(e)),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Namespace {
    /// Creates a namespace named `ncf-<pid>-<n>-<role>` and its worker thread.
    ///
    /// The namespace starts with only `lo` (down). Falls back to an anonymous namespace when
    /// the bind mount is impossible (see the module doc).
    pub fn create(role: &str) -> Result<Namespace, SandboxError> {
        let name = format!("{NETNS_PREFIX}{}-{}-{role}", std::process::id(), next_id());
        Self::create_named(name)
    }

    /// Creates a namespace with an exact name (tests use it to simulate leftovers). The name
    /// must start with [`NETNS_PREFIX`].
    pub fn create_named(name: String) -> Result<Namespace, SandboxError> {
        if !name.starts_with(NETNS_PREFIX) || name.contains('/') {
            return Err(SandboxError::InvalidName {
                name,
                reason: "namespace names start with `ncf-` and contain no `/`",
            });
        }
        type Ready = Result<(OwnedFd, Result<PathBuf, String>), SandboxError>;
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let thread_name = name.clone();
        let worker = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn(move || {
                let name = thread_name;
                if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWNET) {
                    let _ = ready_tx.send(Err(ns_err(&name, "unshare(CLONE_NEWNET)", errno_io(e))));
                    return;
                }
                let fd = match fs::File::open("/proc/thread-self/ns/net") {
                    Ok(f) => OwnedFd::from(f),
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(ns_err(&name, "open /proc/thread-self/ns/net", e)));
                        return;
                    }
                };
                // A failed bind mount leaves an anonymous namespace (documented fallback).
                let path = bind_mount_current(&name).map_err(|e| e.to_string());
                if ready_tx.send(Ok((fd, path))).is_err() {
                    return;
                }
                while let Ok(job) = jobs_rx.recv() {
                    job();
                }
            })
            .map_err(|e| ns_err(&name, "spawn worker thread", e))?;
        let (fd, path) = match ready_rx.recv() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                let _ = worker.join();
                return Err(e);
            }
            Err(_) => {
                let _ = worker.join();
                return Err(SandboxError::WorkerGone { namespace: name });
            }
        };
        let (path, anonymous_reason) = match path {
            Ok(p) => (Some(p), None),
            Err(why) => (None, Some(why)),
        };
        Ok(Namespace {
            name,
            path,
            anonymous_reason,
            fd,
            jobs: Some(jobs_tx),
            worker: Some(worker),
        })
    }

    /// The namespace name (`ncf-<pid>-<n>-<role>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind mount under `/run/netns`, or `None` for an anonymous namespace.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Why the namespace is anonymous (the bind-mount error), or `None` when it is named.
    pub fn anonymous_reason(&self) -> Option<&str> {
        self.anonymous_reason.as_deref()
    }

    /// The namespace fd (e.g. for `IFLA_NET_NS_FD`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The raw namespace fd.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs `f` on the namespace's worker thread and returns its result. Sockets `f` creates
    /// belong to this namespace for their whole life, whichever thread uses them later.
    /// A panic inside `f` is resumed in the caller.
    pub fn run<F, R>(&self, f: F) -> Result<R, SandboxError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let gone = || SandboxError::WorkerGone {
            namespace: self.name.clone(),
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        });
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        match rx.recv().map_err(|_| gone())? {
            Ok(r) => Ok(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Spawns a new thread that enters this namespace (`setns`) and then runs `f`: for
    /// long-lived stateful work such as a target's control plane.
    pub fn spawn<F, R>(&self, thread_name: &str, f: F) -> Result<JoinHandle<R>, SandboxError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| ns_err(&self.name, "dup namespace fd", e))?;
        let name = self.name.clone();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                let entered = nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET);
                drop(fd);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    // Never run `f` outside the namespace.
                    panic!("setns into {name} failed");
                }
                f()
            })
            .map_err(|e| ns_err(&self.name, "spawn thread", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(ns_err(&self.name, "setns", errno_io(e)))
            }
            Err(_) => Err(SandboxError::WorkerGone {
                namespace: self.name.clone(),
            }),
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        if let Some(path) = self.path.take() {
            let _ = remove_mount(&path);
        }
        // The fd closes with the struct; the kernel then destroys the namespace (and the
        // interfaces in it) once no socket created inside it is left open.
    }
}

/// The pid in a harness namespace name `ncf-<pid>-...`.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(NETNS_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The process runs: it exists and is not a zombie (`Z`) or dead (`X`). A run killed by
/// SIGKILL is a zombie until its parent reaps it, and its namespaces are already orphaned.
fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the
        // last ')'.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z" | "X")
        ),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

fn clean_where(remove: impl Fn(&str) -> bool + Copy) -> Result<Vec<String>, SandboxError> {
    let dir = netns_dir();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(super::sockdir::clean_where(&remove));
        }
        Err(e) => return Err(ns_err("*", format!("read {}", dir.display()), e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if owner_pid(&name).is_none() || !remove(&name) {
            continue;
        }
        remove_mount(&entry.path()).map_err(|e| ns_err(&name, "umount + unlink", e))?;
        removed.push(name);
    }
    removed.extend(super::sockdir::clean_where(&remove));
    removed.sort();
    Ok(removed)
}

/// Removes leftovers of killed runs: every `/run/netns/ncf-<pid>-...` (and socket
/// directory, [`super::sockdir`]) whose pid is not a live process, and nothing else.
/// Returns the names removed.
pub fn clean() -> Result<Vec<String>, SandboxError> {
    clean_where(|name| owner_pid(name).is_some_and(|pid| !pid_alive(pid)))
}

/// Removes the namespaces a run with process id `pid` left, if that process is gone
/// (`netconform clean --pid PID`): what a supervisor that killed one run cleans up, without
/// touching the leftovers of others (tests that run side by side each clean their own).
pub fn clean_pid(pid: u32) -> Result<Vec<String>, SandboxError> {
    clean_where(|name| owner_pid(name) == Some(pid) && !pid_alive(pid))
}

/// Removes **every** `/run/netns/ncf-<pid>-...`, live owner or not (`netconform clean --all`).
pub fn clean_all() -> Result<Vec<String>, SandboxError> {
    clean_where(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid("ncf-123-4-h"), Some(123));
        assert_eq!(owner_pid("ncf-x-4-h"), None);
        assert_eq!(owner_pid("other-123"), None);
    }

    /// A killed process its parent has not reaped yet is not alive: `clean` may take its
    /// namespaces at once. Negative control: the same process before the kill is alive.
    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        assert!(pid_alive(pid));
        child.kill().expect("kill");
        let mut zombie = false;
        for _ in 0..200 {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            {
                zombie = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(zombie, "sleep did not become a zombie");
        assert!(!pid_alive(pid));
        child.wait().expect("reap");
        assert!(!pid_alive(pid));
    }
}
