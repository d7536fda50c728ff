//! `report.html` and the comparison page in a real browser: headless Chromium (Debian
//! package `chromium`), driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! no port, no network; NUL-separated JSON on file descriptors 3 and 4).
//!
//! Each page must load without a console error (a script exception, a `console.error`, a
//! log entry of level error such as a resource that failed to load, a failed request), and
//! the summary (the counts, the tables by clause and by check) and a failure's ladder
//! diagrams must be laid out with non-zero boxes. A screenshot is written next to each page
//! for a person (`target/tmp/report-browser/*/*.png`).
//!
//! A long report (2,000 matrix cells, a quarter of them failing with ladders and
//! counterexamples) is loaded beside the small one in the same browser, and the main
//! thread's work, the DOM size and the time to the load event are printed as ratios to the
//! small report (docs/PERFORMANCE.md records them).
//!
//! Without Chromium the test prints a `SKIPPED` line with the command that installs it;
//! with `NETCONFORM_REQUIRE_CHROMIUM=1` (CI sets it) it fails instead. Chromium runs in a
//! process group of its own with a fresh user-data directory; both are removed when the
//! test ends, also when it panics.

mod common;
use common::report_data::*;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant as WallClock};

use base64::Engine as _;
use netconform::engine::Counterexample;
use netconform::engine::Verdict;
use netconform::engine::runner::{CheckReport, FailedRun, RunSummary};
use netconform::report::{self, Deviations, Report};
use netconform::suites::tcp::scenario::{
    PeerSegment, ProfileName, SegmentKind, TcpEvent, TcpScenario, TcpScenarioRun,
};
use netconform::time::Instant;
use netconform::trace::{Direction, Trace};
use netconform::wire::TcpFlags;
use serde_json::{Value, json};

const CHROMIUM: &str = "chromium";
const INSTALL: &str = "apt-get install -y --no-install-recommends chromium";
/// Longest wait for one DevTools answer or event.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The browser window (and screenshot) width, in CSS pixels.
const WIDTH: u64 = 1280;
/// The tallest screenshot, in CSS pixels (a long report is cut there).
const SHOT_MAX_HEIGHT: u64 = 6000;

// ---------------------------------------------------------------- the browser

/// One headless Chromium, killed with its whole process group (and its user-data
/// directory removed) when dropped.
struct Browser {
    child: Child,
    commands: File,
    messages: Receiver<Value>,
    /// Events received while waiting for answers, in order.
    events: Vec<Value>,
    next_id: u64,
    profile: PathBuf,
    log: PathBuf,
}

/// `dir`'s path unique to this process and call.
fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "netconform-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium, or `None` when it is not installed.
    fn start() -> Option<Browser> {
        if Command::new(CHROMIUM)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return None;
        }
        let profile = scratch_dir("chromium-profile");
        std::fs::create_dir_all(&profile).expect("user-data dir");
        let log = profile.with_extension("log");
        // Chromium reads commands from fd 3 and writes answers and events to fd 4.
        let (cmd_read, cmd_write) = pipe();
        let (msg_read, msg_write) = pipe();
        let (cr, mw) = (cmd_read.as_raw_fd(), msg_write.as_raw_fd());
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-crash-reporter",
                "--disable-breakpad",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--no-pings",
                "--mute-audio",
                "--hide-scrollbars",
                // Nothing but loopback: every host name fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--window-size={WIDTH},1000"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Its crash handler (which leaves the process group) and caches write here,
            // not under $HOME.
            .env("XDG_CONFIG_HOME", profile.join("config"))
            .env("XDG_CACHE_HOME", profile.join("cache"))
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("log"))
            .stderr(File::create(&log).expect("log"))
            .process_group(0);
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) on
        // descriptors this process owns.
        unsafe {
            command.pre_exec(move || {
                // Out of the way first (either end may already be 3 or 4), then into place;
                // dup2's copies do not close on exec.
                let a = libc::fcntl(cr, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(mw, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((cmd_read, msg_write));
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(File::from(msg_read));
            let mut buf = Vec::new();
            while matches!(reader.read_until(0, &mut buf), Ok(n) if n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        Some(Browser {
            child,
            commands: File::from(cmd_write),
            messages,
            events: Vec::new(),
            next_id: 1,
            profile,
            log,
        })
    }

    /// The end of Chromium's own log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn receive(&mut self, deadline: WallClock, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(WallClock::now());
        match self.messages.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!(
                "chromium: no {waiting_for} within {TIMEOUT:?}; its log:\n{}",
                self.log_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chromium exited while waiting for {waiting_for}; its log:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Sends `method` (to the page `session` when given) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = WallClock::now() + TIMEOUT;
        loop {
            let v = self.receive(deadline, method);
            if v["id"].as_u64() == Some(id) {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for the event `method` of `session` received after the first `since` events.
    fn wait_event(&mut self, session: &str, method: &str, since: usize) -> Value {
        let deadline = WallClock::now() + TIMEOUT;
        let mut seen = since;
        loop {
            if let Some(e) = self.events[seen..]
                .iter()
                .find(|e| e["method"] == method && e["sessionId"] == session)
            {
                return e.clone();
            }
            seen = self.events.len();
            let v = self.receive(deadline, method);
            self.events.push(v);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain system calls on the process group this test started (its leader is
        // our child, which has not been reaped yet, so the id cannot have been reused).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // A helper that left the group (the crash handler) still names our unique profile
        // directory; wait (at most 3 s) until every process of ours is gone and reaped.
        let deadline = WallClock::now() + Duration::from_secs(3);
        loop {
            let left = processes_naming(&self.profile);
            // SAFETY: signal 0 only asks whether the group still has a process.
            let group_alive = unsafe { libc::killpg(pid, 0) } == 0;
            if (left.is_empty() && !group_alive) || WallClock::now() > deadline {
                break;
            }
            for pid in left {
                // SAFETY: a signal to a process running with our unique user-data directory.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The processes whose command line contains `path`.
fn processes_naming(path: &Path) -> Vec<libc::pid_t> {
    // The path as a whole (`--user-data-dir=PATH`, `--database=PATH/...`), not a prefix of
    // another.
    let whole = format!("{}\0", path.display());
    let inside = format!("{}/", path.display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains(&whole) || c.contains(&inside)
            })
        })
        .collect()
}

/// Starts Chromium, or says loudly why the test does not run (and fails when
/// `NETCONFORM_REQUIRE_CHROMIUM=1`).
fn browser_or_skip(test: &str) -> Option<Browser> {
    let browser = Browser::start();
    if browser.is_none() {
        assert!(
            std::env::var("NETCONFORM_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "{test}: NETCONFORM_REQUIRE_CHROMIUM=1 but `{CHROMIUM}` is not installed ({INSTALL})"
        );
        netconform::sandbox::report_skip(
            test,
            &format!("`{CHROMIUM}` is not installed; install it with: {INSTALL}"),
        );
    }
    browser
}

// ---------------------------------------------------------------- one page

/// What loading one page showed.
struct Page {
    /// Console errors, exceptions and failed loads.
    errors: Vec<String>,
    /// Wall time from navigating to the load event, in ms.
    load_ms: f64,
    /// Performance.getMetrics after the page is laid out: TaskDuration, LayoutDuration,
    /// RecalcStyleDuration (seconds), Nodes, JSHeapUsedSize...
    metrics: Value,
    /// The answer of [`PROBE`].
    probe: Value,
    /// The HTML's size in bytes.
    bytes: u64,
}

impl Page {
    fn metric(&self, name: &str) -> f64 {
        self.metrics[name].as_f64().unwrap_or(f64::NAN)
    }
}

/// Measures the elements a reader needs: each as its box in page coordinates and whether
/// it is rendered (not `display:none`, not `visibility:hidden`, inside its page's width).
const PROBE: &str = r#"(() => {
  const box = (e) => {
    if (!e) return null;
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return {x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height,
            shown: s.display !== 'none' && s.visibility !== 'hidden' && r.right <= innerWidth + 1};
  };
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const h2 = (text) => all('h2').find(h => h.textContent.startsWith(text));
  const next = (h) => { let e = h; while (e && (e = e.nextElementSibling)) if (e.tagName === 'TABLE') return e; return null; };
  const ladders = all('section svg.ladder');
  return {
    title: document.title,
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
    nodes: document.getElementsByTagName('*').length,
    counts: box(document.querySelector('p.counts')),
    byClause: box(next(h2('By clause'))),
    byCheck: box(next(h2('By check'))),
    firstTable: box(document.querySelector('table')),
    ladders: ladders.length,
    firstLadders: ladders.slice(0, 2).map(box),
    ladderRows: ladders.length ? ladders[0].querySelectorAll('text').length : 0,
    // Text of the first ladders that sticks out of its diagram.
    clipped: ladders.slice(0, 4).flatMap(svg => Array.from(svg.querySelectorAll('text'))
      .filter(t => { const b = t.getBBox(); return b.x < 0 || b.x + b.width > svg.viewBox.baseVal.width; })
      .map(t => t.textContent)),
    sections: all('section').length,
    paint: performance.getEntriesByType('paint').map(p => [p.name, p.startTime]),
    nav: (() => { const n = performance.getEntriesByType('navigation')[0];
                  return n ? {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd} : null; })(),
  };
})()"#;

/// Opens `html` in a fresh tab, waits for it to load and lay out, probes it, and writes a
/// screenshot to `png` (at most [`SHOT_MAX_HEIGHT`] pixels of it).
fn open(b: &mut Browser, html: &Path, png: &Path) -> Page {
    let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let target_id = target["targetId"].as_str().expect("targetId").to_string();
    let attached = b.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target_id, "flatten": true}),
    );
    let session = attached["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    let s = Some(session.as_str());
    for domain in ["Page", "Runtime", "Log", "Network", "Performance"] {
        b.call(s, &format!("{domain}.enable"), json!({}));
    }
    b.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    );
    let mark = b.events.len();
    let url = format!("file://{}", html.display());
    let started = WallClock::now();
    let nav = b.call(s, "Page.navigate", json!({"url": url}));
    assert!(nav["errorText"].is_null(), "{url}: {}", nav["errorText"]);
    b.wait_event(&session, "Page.loadEventFired", mark);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let height = b.call(
        s,
        "Runtime.evaluate",
        json!({"expression": "document.documentElement.scrollHeight", "returnByValue": true}),
    )["result"]["value"]
        .as_u64()
        .expect("height");
    let metrics: Value = b.call(s, "Performance.getMetrics", json!({}))["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["value"].clone(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    let probe = b.call(
        s,
        "Runtime.evaluate",
        json!({"expression": PROBE, "returnByValue": true}),
    );
    assert!(
        probe["exceptionDetails"].is_null(),
        "probe: {}",
        probe["exceptionDetails"]
    );
    let probe = probe["result"]["value"].clone();
    // The top of the page as tall as the screenshot: a window that tall, so that the
    // capture needs no layout of the whole page.
    let shot_height = height.min(SHOT_MAX_HEIGHT);
    b.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": WIDTH, "height": shot_height, "deviceScaleFactor": 1, "mobile": false}),
    );
    let shot = b.call(s, "Page.captureScreenshot", json!({"format": "png"}));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(png, bytes).expect("screenshot written");
    // Let late errors (a resource failing after load) arrive, then collect them.
    b.call(s, "Runtime.evaluate", json!({"expression": "1"}));
    let errors = errors_of(&b.events[mark..], &session);
    b.call(None, "Target.closeTarget", json!({"targetId": target_id}));
    Page {
        errors,
        load_ms,
        metrics,
        probe,
        bytes: std::fs::metadata(html).map(|m| m.len()).unwrap_or(0),
    }
}

/// The console errors among `events` of `session`.
fn errors_of(events: &[Value], session: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e["sessionId"] == session) {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => out.push(format!(
                "exception: {} {}",
                p["exceptionDetails"]["text"], p["exceptionDetails"]["exception"]["description"]
            )),
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                out.push(format!("console.{}: {}", p["type"], p["args"]))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => out.push(format!(
                "log ({}): {} {}",
                p["entry"]["source"], p["entry"]["text"], p["entry"]["url"]
            )),
            "Network.loadingFailed" if p["canceled"] != true => out.push(format!(
                "failed load: {} {}",
                p["errorText"], p["blockedReason"]
            )),
            "Network.responseReceived" if p["response"]["status"].as_u64() >= Some(400) => out
                .push(format!(
                    "HTTP {}: {}",
                    p["response"]["status"], p["response"]["url"]
                )),
            _ => {}
        }
    }
    out
}

/// Asserts that `what` (a [`PROBE`] box) is laid out, with a size, and rendered.
#[track_caller]
fn assert_shown(page: &Page, what: &str) {
    let b = &page.probe[what];
    assert!(
        b["w"].as_f64() > Some(0.0) && b["h"].as_f64() > Some(0.0) && b["shown"] == true,
        "{what} is not visible: {b} (probe {})",
        page.probe
    );
}

// ---------------------------------------------------------------- the reports

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

const STATES: [&str; 10] = [
    "listen",
    "syn-sent",
    "syn-received",
    "established",
    "fin-wait-1",
    "fin-wait-2",
    "close-wait",
    "closing",
    "last-ack",
    "time-wait",
];
const SEGMENTS: [&str; 10] = [
    "syn", "syn-ack", "syn-fin", "ack", "data", "fin", "fin-ack", "rst", "rst-ack", "urg",
];

/// One matrix cell: `tcp.matrix.<v4|v6>.<state>.<segment>.<boundary>`; every `fail_every`th
/// cell fails with a shrunk counterexample whose run has a handshake, `data` data segments
/// and the wrong answer.
fn cell(i: usize, fail_every: usize, data: u32) -> CheckReport {
    let ip = if i.is_multiple_of(2) { "v4" } else { "v6" };
    let state = STATES[(i / 2) % STATES.len()];
    let segment = SEGMENTS[(i / 20) % SEGMENTS.len()];
    let boundary = i / 200;
    let id = leak(format!("tcp.matrix.{ip}.{state}.{segment}.b{boundary}"));
    let failing = i % fail_every == fail_every - 1;
    let mut trace = Trace::default();
    trace.push_note(Instant::ZERO, "the stack listens on port 80");
    trace.push_call(Instant::from_micros(100), "listen(dut:80)", "Ok");
    trace.push_frame(
        Instant::from_millis(1),
        Direction::Sent,
        to_stack(1000, 0, TcpFlags::SYN, 0),
    );
    trace.push_frame(
        Instant::from_millis(2),
        Direction::Received,
        from_stack(5000, 1001, TcpFlags::SYN_ACK, 0),
    );
    trace.push_frame(
        Instant::from_millis(3),
        Direction::Sent,
        to_stack(1001, 5001, TcpFlags::ACK, 0),
    );
    for k in 0..data {
        trace.push_frame(
            Instant::from_millis(10 + u64::from(k)),
            Direction::Sent,
            to_stack(1001 + k * 100, 5001, TcpFlags::PSH_ACK, 100),
        );
        trace.push_frame(
            Instant::from_millis(10 + u64::from(k)),
            Direction::Received,
            from_stack(5001, 1101 + k * 100, TcpFlags::ACK, 0),
        );
    }
    let probe_at = trace.events.len();
    trace.push_frame(
        Instant::from_millis(200),
        Direction::Sent,
        to_stack(1001 + data * 100, 7777, TcpFlags::ACK, 0),
    );
    trace.push_frame(
        Instant::from_millis(201),
        Direction::Received,
        from_stack(0, 1001, TcpFlags::RST_ACK, 0),
    );
    // The widest time a ladder shows.
    trace.push_note(Instant::from_micros(99_999_999), "cell ends");
    let (verdict, clauses) = if failing {
        (
            Verdict::Fail {
                step: format!("{state} × {segment} at boundary {boundary}"),
                differences: vec![
                    "tcp.flags: expected R, observed R.".into(),
                    "tcp.seq: expected 7777, observed 0".into(),
                ],
            },
            vec![LISTEN_RESET],
        )
    } else {
        (Verdict::Pass, vec![LISTEN_RESET, DELAYED_ACK])
    };
    let (counterexample, counterexample_run) = if failing {
        let scenario = TcpScenario {
            name: format!("{state}-{segment}"),
            profile: ProfileName::Linux,
            ipv6: ip == "v6",
            peer_mss: Some(1460),
            events: vec![
                TcpEvent::Listen,
                TcpEvent::Peer(PeerSegment::next(SegmentKind::Ack)),
            ],
        };
        (
            Some(Counterexample::Scenario {
                scenario: Box::new(TcpScenarioRun {
                    scenario,
                    peer_port: 40000,
                }),
                shrunk: true,
                original_steps: 12,
            }),
            Some(FailedRun {
                trace: trace.clone(),
                failed_at: probe_at + 1,
                expected: Some("RST seq 7777".into()),
                differences: vec!["tcp.seq: expected 7777, observed 0".into()],
            }),
        )
    } else {
        (None, None)
    };
    CheckReport {
        id,
        title: leak(format!(
            "TCP matrix cell: {segment} in {state} at boundary {boundary} ({ip})"
        )),
        clauses,
        verdict,
        duration_ms: 3,
        trace,
        names: names(),
        environment: vec!["net.ipv4.tcp_early_retrans=0".into()],
        expected: failing.then(|| "RST seq 7777".into()),
        failed_at: failing.then_some(probe_at + 1),
        counterexample,
        counterexample_run,
        retries: Vec::new(),
        not_checked: Vec::new(),
        clause_tallies: Vec::new(),
        other_kind: false,
    }
}

/// A run of `cells` matrix cells, every `fail_every`th failing, plus an unsupported and an
/// errored check.
fn matrix_run(target: &str, cells: usize, fail_every: usize) -> RunSummary {
    let mut checks: Vec<CheckReport> = (0..cells).map(|i| cell(i, fail_every, 8)).collect();
    let mut unsupported = cell(cells, usize::MAX, 0);
    unsupported.id = "switch.ageing";
    unsupported.verdict = Verdict::Unsupported {
        reason: "ports: the target is not a switch".into(),
    };
    let mut errored = cell(cells + 1, usize::MAX, 0);
    errored.id = "arp.probe";
    errored.verdict = Verdict::Error {
        reason: "setting up the target: needs CAP_NET_ADMIN".into(),
    };
    checks.push(unsupported);
    checks.push(errored);
    RunSummary {
        target: target.into(),
        profile: ProfileName::Linux,
        checks,
    }
}

/// The pages' directory: `target/tmp/report-browser/<name>`, emptied.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-browser")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

fn summary_line(name: &str, p: &Page) -> String {
    format!(
        "{name:>17}: {:>8} bytes, {:>6} elements; load event {:>5.0} ms; main thread {:>5.0} ms busy, {:>5.0} ms CPU (layout {:>4.0}, style {:>4.0}); {} px tall",
        p.bytes,
        p.probe["nodes"],
        p.load_ms,
        p.metric("TaskDuration") * 1e3,
        p.metric("ThreadTime") * 1e3,
        p.metric("LayoutDuration") * 1e3,
        p.metric("RecalcStyleDuration") * 1e3,
        p.probe["height"],
    )
}

/// What a reader of `report.html` needs: no error, the counts and both tables laid out,
/// the two ladders of the first failure side by side with all their text inside them, and
/// nothing wider than the window.
#[track_caller]
fn assert_readable_report(page: &Page, name: &str, ladders: usize) {
    assert!(page.errors.is_empty(), "{name}: {:#?}", page.errors);
    for what in ["counts", "byClause", "byCheck"] {
        assert_shown(page, what);
    }
    assert_eq!(page.probe["ladders"], ladders, "{name}: {}", page.probe);
    let ladder = &page.probe["firstLadders"];
    for i in 0..2 {
        let b = &ladder[i];
        assert!(
            b["w"].as_f64() > Some(100.0) && b["h"].as_f64() > Some(100.0) && b["shown"] == true,
            "{name}: ladder {i} of the first failure is not visible: {b}"
        );
    }
    assert_eq!(
        ladder[0]["y"], ladder[1]["y"],
        "{name}: ladders not side by side"
    );
    assert!(
        page.probe["ladderRows"].as_u64() > Some(10),
        "{}",
        page.probe
    );
    assert_eq!(
        page.probe["clipped"],
        json!([]),
        "{name}: text outside its ladder"
    );
    assert!(
        page.probe["width"].as_u64() <= Some(WIDTH),
        "{name} scrolls sideways: {}",
        page.probe
    );
}

// ---------------------------------------------------------------- the test

#[test]
fn reports_render_in_chromium() {
    let Some(mut browser) = browser_or_skip("reports_render_in_chromium") else {
        return;
    };
    let mut out = std::io::stderr();

    // A small report, written as certify writes it: 6 matrix cells (2 failing), an
    // unsupported and an errored check.
    let small_dir = out_dir("small");
    let small_run = matrix_run("smoltcp", 6, 3);
    let small = Report::build(&small_run, &Deviations::none());
    report::write_dir(&small_run, &small, &small_dir).expect("report written");
    let small_page = open(
        &mut browser,
        &small_dir.join(report::REPORT_HTML),
        &small_dir.join("report.png"),
    );
    assert_readable_report(&small_page, "report.html", 4);
    // The baseline of the figures: the same page again, in a browser that has warmed up.
    let small_page = open(
        &mut browser,
        &small_dir.join(report::REPORT_HTML),
        &small_dir.join("report.png"),
    );
    let _ = writeln!(out, "{}", summary_line("report (8)", &small_page));

    // Its comparison with a target that passes every cell and lacks a check.
    let cmp_dir = out_dir("compare");
    let mut linux_run = matrix_run("linux", 6, usize::MAX);
    linux_run.checks.retain(|c| c.id != "switch.ageing");
    let linux = Report::build(&linux_run, &Deviations::none());
    let cmp = report::compare::compare(&[("linux".into(), linux), ("smoltcp".into(), small)]);
    std::fs::write(cmp_dir.join("comparison.html"), cmp).expect("written");
    let page = open(
        &mut browser,
        &cmp_dir.join("comparison.html"),
        &cmp_dir.join("comparison.png"),
    );
    assert!(
        page.errors.is_empty(),
        "comparison.html: {:#?}",
        page.errors
    );
    for what in ["firstTable", "byClause", "byCheck"] {
        assert_shown(&page, what);
    }
    assert!(
        page.probe["width"].as_u64() <= Some(WIDTH),
        "the comparison scrolls sideways: {}",
        page.probe
    );
    let _ = writeln!(out, "{}", summary_line("comparison (8)", &page));

    // 2,000 matrix cells, a quarter failing, measured beside the small report in the same
    // browser. Its failures are listed in the table by check on the first screen, not
    // after thousands of links.
    let large_dir = out_dir("large");
    let large_run = matrix_run("smoltcp", 2000, 4);
    let large = Report::build(&large_run, &Deviations::none());
    std::fs::write(
        large_dir.join(report::REPORT_HTML),
        report::html::render(&large, &large_run),
    )
    .expect("written");
    let large_page = open(
        &mut browser,
        &large_dir.join(report::REPORT_HTML),
        &large_dir.join("report.png"),
    );
    assert_readable_report(&large_page, "the long report.html", 1000);
    assert!(
        large_page.probe["byCheck"]["y"].as_f64() < Some(1000.0),
        "the table by check starts below the first screen: {}",
        large_page.probe
    );
    let _ = writeln!(out, "{}", summary_line("report (2002)", &large_page));

    // The comparison of two such reports (the second one's outcomes reshuffled).
    let mut other = large.clone();
    other.target = "linux".into();
    for (i, c) in other.checks.iter_mut().enumerate() {
        c.outcome = if i % 7 == 6 {
            report::Outcome::Fail
        } else {
            report::Outcome::Pass
        };
    }
    let cmp = report::compare::compare(&[("linux".into(), other), ("smoltcp".into(), large)]);
    std::fs::write(large_dir.join("comparison.html"), cmp).expect("written");
    let page = open(
        &mut browser,
        &large_dir.join("comparison.html"),
        &large_dir.join("comparison.png"),
    );
    assert!(
        page.errors.is_empty(),
        "the long comparison: {:#?}",
        page.errors
    );
    assert_shown(&page, "byCheck");
    let _ = writeln!(out, "{}", summary_line("comparison (2002)", &page));

    let ratio = |name: &str| large_page.metric(name) / small_page.metric(name);
    let _ = writeln!(
        out,
        "report of 2002 checks vs 8: main thread busy ×{:.1}, CPU ×{:.1}, layout ×{:.1}, load event ×{:.1}, elements ×{:.0}, bytes ×{:.0}",
        ratio("TaskDuration"),
        ratio("ThreadTime"),
        ratio("LayoutDuration"),
        large_page.load_ms / small_page.load_ms,
        large_page.probe["nodes"].as_f64().unwrap_or(0.0)
            / small_page.probe["nodes"].as_f64().unwrap_or(1.0),
        large_page.bytes as f64 / small_page.bytes as f64,
    );
    let _ = writeln!(
        out,
        "pages and screenshots: {}",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("report-browser")
            .display()
    );
    let profile = browser.profile.clone();
    drop(browser);
    let left = processes_naming(&profile);
    assert!(left.is_empty(), "chromium processes left: {left:?}");
    assert!(!profile.exists(), "{} is left", profile.display());
}

/// Any saved page in Chromium, for a person: prints the same figures and writes a
/// screenshot beside it (`<page>.png`):
/// `NETCONFORM_MEASURE_HTML=netconform-report/report.html cargo test --release --test report_browser -- --ignored measure_page --nocapture`.
#[test]
#[ignore = "a tool: needs NETCONFORM_MEASURE_HTML=<page.html>"]
fn measure_page() {
    let path = std::env::var("NETCONFORM_MEASURE_HTML")
        .map(PathBuf::from)
        .expect("NETCONFORM_MEASURE_HTML=<page.html>");
    let path = std::fs::canonicalize(&path).expect("the page exists");
    let mut browser = browser_or_skip("measure_page").expect("chromium is installed");
    let page = open(&mut browser, &path, &path.with_extension("png"));
    let _ = writeln!(std::io::stderr(), "{}", summary_line("page", &page));
    assert!(page.errors.is_empty(), "{:#?}", page.errors);
}
