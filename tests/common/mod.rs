//! Helpers shared by the namespace tests and the property tests.
#![allow(dead_code)]

/// The name of the test function this is written in, as libtest lists it without its
/// module path (`endpoints_describe_the_lab`), taken from the function itself so that it can
/// never drift from it.
#[allow(unused_macros)]
macro_rules! test_name {
    () => {{
        fn here() {}
        $crate::common::test_name_of(::std::any::type_name_of_val(&here))
    }};
}

/// The first line of every test that needs network namespaces:
///
/// ```ignore
/// #[test]
/// fn endpoints_describe_the_lab() {
///     require_netns!();
///     // ... the test, privileged from here on
/// }
/// ```
///
/// Without the privilege it returns from the test after
/// [`netconform::sandbox::require_netns`] said so under the test's own name: a loud
/// `SKIPPED <test>: <why>` line on stderr, also appended to `NETCONFORM_SKIP_LOG`; with
/// `NETCONFORM_REQUIRE_NETNS=1` it panics instead.
#[allow(unused_macros)]
macro_rules! require_netns {
    () => {
        if !::netconform::sandbox::require_netns(test_name!()) {
            return;
        }
    };
}

/// The test's name in `type_name_of_val` of a function declared inside it
/// (`crate::module::the_test::here`, or `...::the_test::{{closure}}::here` inside a closure):
/// the last path segment that names a function.
pub fn test_name_of(path: &'static str) -> &'static str {
    path.rsplit("::")
        .find(|s| *s != "here" && *s != "{{closure}}")
        .unwrap_or(path)
}

pub mod regressions;
pub mod report_data;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netconform::sandbox::{MacAddr, PacketSocket};

/// A 42-byte ARP request (Ethernet broadcast) asking who has `target_ip`.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&sender_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target_ip.octets());
    f
}

/// An ARP reply parsed from a frame: (sender MAC, sender IP, target MAC, target IP).
pub fn parse_arp_reply(f: &[u8]) -> Option<(MacAddr, Ipv4Addr, MacAddr, Ipv4Addr)> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[20..22] != [0, 2] {
        return None;
    }
    let mac = |o: usize| MacAddr(f[o..o + 6].try_into().unwrap());
    let ip = |o: usize| Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
    Some((mac(22), ip(28), mac(32), ip(38)))
}

/// Frames received until `deadline` that `keep` accepts.
pub fn collect(
    sock: &PacketSocket,
    within: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while let Some(f) = sock.recv(deadline).unwrap() {
        if keep(&f) {
            out.push(f);
        }
    }
    out
}

/// The first frame `keep` accepts before `within` passes.
pub fn first(
    sock: &PacketSocket,
    within: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while let Some(f) = sock.recv(deadline).unwrap() {
        if keep(&f) {
            return Some(f);
        }
    }
    None
}

/// Names of host-namespace interfaces that carry the harness prefix (must stay empty).
pub fn host_ncf_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("ncf"))
                .collect()
        })
        .unwrap_or_default()
}

/// The random source of a property test: seeded from `default_seed`, so that `cargo test`
/// runs the same cases every time and a failure in CI reproduces;
/// `NETCONFORM_PROPTEST_SEED=<number>` explores others (e.g. in a nightly run).
pub fn rng(default_seed: u64) -> proptest::test_runner::TestRng {
    use proptest::test_runner::{RngAlgorithm, TestRng};
    let seed: u64 = std::env::var("NETCONFORM_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_mul(i as u64 + 1)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// How many cases a property test runs: `default`, or `NETCONFORM_PROPTEST_CASES=<n>`.
pub fn cases(default: u32) -> u32 {
    std::env::var("NETCONFORM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Locks a rendered trace as an insta snapshot; times differ from run to run and are masked,
/// everything else is locked (for the test crates that declare `#[macro_use] mod common`).
#[allow(unused_macros)]
macro_rules! assert_trace_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({ filters => vec![(r"(?m)^ *\d+\.\d{3}", "[ms]")] }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

/// The catalogue's check `id`.
pub fn spec(id: &str) -> netconform::engine::CheckSpec {
    netconform::suites::catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Requires a passing verdict, showing the trace otherwise.
pub fn assert_pass(report: &netconform::engine::CheckReport) {
    assert_eq!(
        report.verdict,
        netconform::engine::Verdict::Pass,
        "{}\ntrace:\n{}",
        report.id,
        report.trace_text()
    );
}

/// The failing step and its differences; panics (with the trace) on any other verdict.
pub fn failure(report: &netconform::engine::CheckReport) -> (String, Vec<String>) {
    match &report.verdict {
        netconform::engine::Verdict::Fail { step, differences } => {
            (step.clone(), differences.clone())
        }
        other => panic!(
            "{}: expected a failure, got {other:?}\n{}",
            report.id,
            report.trace_text()
        ),
    }
}

/// How a negative control spoils a Linux router: what it sends, what it answers, which
/// controls it performs. The defaults change nothing.
pub trait Spoil: Copy + Send + Sync + 'static {
    /// The frame the router sent out of `port`, changed, or `None` to drop it.
    fn frame(&self, _port: usize, bytes: Vec<u8>) -> Option<Vec<u8>> {
        Some(bytes)
    }
    /// A state answer, changed.
    fn answer(&self, answer: netconform::dut::StateAnswer) -> netconform::dut::StateAnswer {
        answer
    }
    /// Whether the router performs `control` (`false`: it says it did and does nothing).
    fn performs(&self, _control: &netconform::dut::Control) -> bool {
        true
    }
}

/// An unspoiled router.
#[derive(Debug, Clone, Copy)]
pub struct Faithful;
impl Spoil for Faithful {}

/// A Linux router spoiled by `S`, for the negative controls of the router checks.
pub struct Spoiled<S: Spoil> {
    inner: Box<dyn netconform::dut::Dut>,
    /// The router's ports, read once.
    ports: usize,
    spoil: S,
}

impl<S: Spoil> netconform::dut::Dut for Spoiled<S> {
    fn name(&self) -> &str {
        "spoiled-linux-router"
    }

    fn endpoints(&self) -> &netconform::dut::Endpoints {
        self.inner.endpoints()
    }

    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl<S: Spoil> netconform::dut::Link for Spoiled<S> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), netconform::dut::DutError> {
        self.inner.send_frame(frame)
    }

    fn recv_frame(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, netconform::dut::DutError> {
        self.inner.recv_frame(deadline)
    }

    fn ports(&self) -> usize {
        self.ports
    }

    fn send_frame_on(
        &mut self,
        port: usize,
        frame: &[u8],
    ) -> Result<(), netconform::dut::DutError> {
        self.inner.send_frame_on(port, frame)
    }

    fn recv_frame_any(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<(usize, Vec<u8>)>, netconform::dut::DutError> {
        while let Some((port, bytes)) = self.inner.recv_frame_any(deadline)? {
            if let Some(b) = self.spoil.frame(port, bytes) {
                return Ok(Some((port, b)));
            }
        }
        Ok(None)
    }
}

impl<S: Spoil> netconform::dut::Tables for Spoiled<S> {
    fn query(
        &mut self,
        query: &netconform::dut::StateQuery,
    ) -> Result<netconform::dut::StateAnswer, netconform::dut::DutError> {
        Ok(self.spoil.answer(self.inner.query(query)?))
    }

    fn control(
        &mut self,
        control: &netconform::dut::Control,
    ) -> Result<(), netconform::dut::DutError> {
        if self.spoil.performs(control) {
            self.inner.control(control)
        } else {
            Ok(())
        }
    }
}

/// Runs router check `spec` on a Linux router namespace built as it needs, spoiled by `spoil`.
pub fn run_on_router<S: Spoil>(
    spec: &netconform::engine::CheckSpec,
    profile: netconform::suites::tcp::scenario::ProfileName,
    spoil: S,
) -> netconform::engine::CheckReport {
    use netconform::dut::router::{LinuxRouter, router_config_for};
    let config = router_config_for(&spec.needs).expect("a router check");
    let factory = move |_: &netconform::engine::CheckSpec| -> Result<
        Box<dyn netconform::dut::Dut>,
        netconform::dut::DutError,
    > {
        let mut inner: Box<dyn netconform::dut::Dut> = Box::new(LinuxRouter::new(config.clone())?);
        Ok(Box::new(Spoiled {
            ports: inner.ports(),
            inner,
            spoil,
        }))
    };
    netconform::engine::runner::run_one(spec, &factory, profile)
}

/// A check run on a Linux router wrapped in the library's spoiler (`certify --mutate`'s
/// `spoil`, the suite's machinery left alone); also how often the spoil acted.
pub fn run_on_spoiled_router(
    spec: &netconform::engine::CheckSpec,
    spoil: netconform::dut::spoil::Spoil,
) -> (netconform::engine::CheckReport, usize) {
    use netconform::dut::router::{LinuxRouter, router_config_for};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = router_config_for(&spec.needs).expect("a router check");
    let applied = Arc::new(AtomicUsize::new(0));
    let machinery = netconform::suites::machinery_of(spec);
    let factory = |_: &netconform::engine::CheckSpec| -> Result<
        Box<dyn netconform::dut::Dut>,
        netconform::dut::DutError,
    > {
        Ok(Box::new(netconform::dut::spoil::Spoiled::new(
            Box::new(LinuxRouter::new(config.clone())?),
            spoil,
            machinery,
            Arc::clone(&applied),
        )))
    };
    let report = netconform::engine::runner::run_one(
        spec,
        &factory,
        netconform::suites::tcp::scenario::ProfileName::Linux,
    );
    (report, applied.load(Ordering::SeqCst))
}

/// The seed files `corpora/<target>/*.bin` as (file name, bytes), sorted by name; at least
/// `at_least` of them (the ones the directory's SOURCES.md describes).
pub fn seeds(target: &str, at_least: usize) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpora")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("seed"))
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= at_least,
        "expected the seeds of corpora/{target}/SOURCES.md"
    );
    seeds
}

/// The seed `corpora/<target>/<name>`.
pub fn seed(target: &str, name: &str) -> Vec<u8> {
    seeds(target, 0)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {target}/{name}"))
        .1
}

/// How many times a shrunk failure is run again, each on a fresh target, before it is saved
/// as a regression.
pub const REPLAYS_BEFORE_SAVING: usize = 3;

/// Saves `minimal` (a shrunk failing scenario) as `path` only when it fails again on every
/// one of [`REPLAYS_BEFORE_SAVING`] replays (`replay` builds a fresh target each time), and
/// panics either way with what happened.
///
/// A disagreement that does not come back is a timing or load artefact (a stack timer that
/// ran late on a loaded machine, say), not a finding: saving it would make every later run
/// fail on a file that replays as a pass on a quiet machine. It is not saved, and the panic
/// says so and prints the scenario, so that the flake is still seen and investigated.
pub fn save_regression_if_it_reproduces<S: serde::Serialize>(
    what: &str,
    minimal: &S,
    path: &std::path::Path,
    failure: &str,
    mut replay: impl FnMut() -> Result<(), String>,
) -> ! {
    let json = serde_json::to_string_pretty(minimal).expect("scenario serialises");
    let outcomes: Vec<Result<(), String>> = (0..REPLAYS_BEFORE_SAVING).map(|_| replay()).collect();
    let agreed = outcomes.iter().filter(|o| o.is_ok()).count();
    if agreed > 0 {
        panic!(
            "a generated {what} disagreed with the kernel, but the shrunk scenario agrees on {agreed} of \
             {REPLAYS_BEFORE_SAVING} replays on fresh targets: a timing or load artefact, NOT saved as a \
             regression.\nThe disagreement:\n{failure}\nThe scenario:\n{json}"
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("fixtures dir");
    }
    std::fs::write(path, json + "\n").expect("save the regression");
    panic!(
        "a generated {what} disagrees with the kernel, again on each of {REPLAYS_BEFORE_SAVING} replays; \
         saved as {0} (commit it, and raise the count of its suite's `Fixtures::saved` in \
         tests/common/regressions.rs)\nreplay: netconform replay {0}\n{failure}",
        path.display()
    );
}

/// The tests of one stack's file run one at a time: each asserts that nothing of this
/// process (agent, daemon, namespace) is left when it ends, which a test beside it would
/// break.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The catalogue's checks `ids`, in that order.
pub fn checks(ids: &[&str]) -> Vec<netconform::engine::CheckSpec> {
    let all = netconform::suites::catalogue();
    ids.iter()
        .map(|id| {
            *all.iter()
                .find(|c| c.id == *id)
                .unwrap_or_else(|| panic!("no check {id}"))
        })
        .collect()
}

/// The report of check `id` in `summary`.
pub fn report<'a>(
    summary: &'a netconform::engine::runner::RunSummary,
    id: &str,
) -> &'a netconform::engine::CheckReport {
    summary
        .checks
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no report for {id}"))
}

/// Whether `program` (a stack's Debian package) is on the PATH; when it is not, the test is
/// skipped loudly, or fails under `NETCONFORM_REQUIRE_NETNS=1` (CI, after `ci/deps`
/// installed it). `install` says how to get it.
pub fn program_installed(test: &str, program: &str, install: &str) -> bool {
    if netconform::dut::slirp::on_path(program) {
        return true;
    }
    let why = format!("{program} is not installed ({install}; ci/deps installs it)");
    assert!(
        std::env::var("NETCONFORM_REQUIRE_NETNS").as_deref() != Ok("1"),
        "{test}: {why}"
    );
    netconform::sandbox::report_skip(test, &why);
    false
}
