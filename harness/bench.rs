//! The floor benchmark: how long one raw frame takes through veth to the kernel and back,
//! and what the harness adds on top of it.
//!
//! Both measurements use the same ARP exchange (the peer asks who has the stack's address;
//! the kernel answers) on the same lab, in alternating rounds so that a machine that gets
//! busier or quieter during the run affects both alike:
//!
//! - **floor**: pre-built request bytes go out through the target's wire plane and the
//!   loop waits for the reply frame, nothing else;
//! - **harness**: the full path a check takes: build the request as a [`Frame`], emit it,
//!   record it in a trace, receive, parse, pass over unrelated frames, compare the reply
//!   field by field with an [`ExpectArp`].
//!
//! The result is reported as a ratio (harness / floor), never as an absolute pass mark.

use std::fmt;

use crate::dut::linux::LinuxHost;
use crate::dut::{Dut, DutError};
use crate::engine::Session;
use crate::engine::session::Ipv4Pair;
use crate::sandbox::LabConfig;
use crate::suites::arp::expect::ExpectArp;
use crate::time::Duration;
use crate::wire::{ArpOperation, Frame};

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Exchanges per measurement.
    pub iterations: usize,
    /// Median floor round trip, in microseconds.
    pub floor_median_us: f64,
    /// Mean floor round trip, in microseconds.
    pub floor_mean_us: f64,
    /// Median harness exchange, in microseconds.
    pub harness_median_us: f64,
    /// Mean harness exchange, in microseconds.
    pub harness_mean_us: f64,
    /// Time to build and tear down one lab, in milliseconds.
    pub lab_setup_ms: f64,
}

impl BenchReport {
    /// Harness cost per exchange as a multiple of the floor (medians).
    pub fn ratio(&self) -> f64 {
        self.harness_median_us / self.floor_median_us
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lab set-up and tear-down:           {:>9.1} ms",
            self.lab_setup_ms
        )?;
        writeln!(
            f,
            "floor   (raw ARP round trip, {} x): median {:>7.1} us, mean {:>7.1} us",
            self.iterations, self.floor_median_us, self.floor_mean_us
        )?;
        writeln!(
            f,
            "harness (checked exchange,  {} x): median {:>7.1} us, mean {:>7.1} us",
            self.iterations, self.harness_median_us, self.harness_mean_us
        )?;
        writeln!(
            f,
            "ratio harness / floor (medians):    {:>9.2}  (goal <= 2.00)",
            self.ratio()
        )
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The target failed.
    #[error(transparent)]
    Dut(#[from] DutError),
    /// The kernel did not answer an ARP request.
    #[error("the kernel did not answer ARP request {0} within a second")]
    NoReply(usize),
    /// The checked exchange failed its comparison.
    #[error("the checked exchange failed: {0}")]
    Check(String),
}

fn is_arp_reply(bytes: &[u8]) -> bool {
    // Ethernet type 0x0806 and ARP operation 2 (reply), read straight from the bytes: the
    // floor must not pay for parsing.
    bytes.len() >= 22 && bytes[12..14] == [0x08, 0x06] && bytes[20..22] == [0, 2]
}

fn floor_round(target: &mut dyn Dut, bytes: &[u8], n: usize) -> Result<f64, BenchError> {
    let started = std::time::Instant::now();
    target.send_frame(bytes)?;
    let deadline = started + std::time::Duration::from_secs(1);
    loop {
        match target.recv_frame(deadline)? {
            Some(reply) if is_arp_reply(&reply) => return Ok(started.elapsed().as_secs_f64() * 1e6),
            Some(_) => continue,
            None => return Err(BenchError::NoReply(n)),
        }
    }
}

fn harness_round(target: &mut dyn Dut, n: usize) -> Result<f64, BenchError> {
    let started = std::time::Instant::now();
    let mut session = Session::new(target);
    let e = session
        .ipv4()
        .map_err(|err| BenchError::Check(err.to_string()))?;
    let frame = request_for(&e);
    session
        .send("bench request", &frame)
        .map_err(|err| BenchError::Check(err.to_string()))?;
    let expected = ExpectArp {
        operation: ArpOperation::Reply,
        eth_destination: e.peer_mac,
        sender_mac: e.stack_mac,
        sender_ip: e.stack,
        target_mac: Some(e.peer_mac),
        target_ip: e.peer,
    };
    match session.expect("bench reply", Duration::from_millis(1000), &expected) {
        Ok(_) => {}
        Err(crate::engine::CheckError::NothingObserved { .. }) => {
            return Err(BenchError::NoReply(n));
        }
        Err(err) => return Err(BenchError::Check(err.to_string())),
    }
    let trace = session.into_trace();
    std::hint::black_box(trace);
    Ok(started.elapsed().as_secs_f64() * 1e6)
}

/// The peer's ARP request for the stack's IPv4 address.
fn request_for(e: &Ipv4Pair) -> Frame {
    Frame::arp_request(e.peer_mac, e.peer, e.stack)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Runs the benchmark on a fresh Linux lab: `iterations` exchanges of each kind, alternated.
pub fn run(iterations: usize) -> Result<BenchReport, BenchError> {
    let iterations = iterations.max(10);
    let setup_started = std::time::Instant::now();
    let probe = LinuxHost::new(LabConfig::default())?;
    drop(probe);
    let lab_setup_ms = setup_started.elapsed().as_secs_f64() * 1e3;

    let mut target = LinuxHost::new(LabConfig::default())?;
    let pair = Session::new(&mut target)
        .ipv4()
        .map_err(|err| BenchError::Check(err.to_string()))?;
    let bytes = request_for(&pair).emit();
    // Warm up: the first exchange creates the neighbour entry.
    for n in 0..20 {
        floor_round(&mut target, &bytes, n)?;
        harness_round(&mut target, n)?;
    }
    let mut floor = Vec::with_capacity(iterations);
    let mut harness = Vec::with_capacity(iterations);
    for n in 0..iterations {
        floor.push(floor_round(&mut target, &bytes, n)?);
        harness.push(harness_round(&mut target, n)?);
    }
    Ok(BenchReport {
        iterations,
        floor_mean_us: mean(&floor),
        floor_median_us: median(&mut floor),
        harness_mean_us: mean(&harness),
        harness_median_us: median(&mut harness),
        lab_setup_ms,
    })
}

/// Figures of one run of the whole TCP matrix.
#[derive(Debug, Clone)]
pub struct MatrixBench {
    /// Cells run (IPv4 and IPv6).
    pub cells: usize,
    /// Workers (each with its own namespaces).
    pub workers: usize,
    /// Wall time, in seconds, set-up of the labs included.
    pub seconds: f64,
    /// Cells that disagreed with the Linux profile.
    pub disagreements: usize,
    /// The floor round trip measured in the same run, in microseconds (median).
    pub floor_median_us: f64,
    /// Where the cells' time went, when asked for (`--profile`).
    pub profile: Option<crate::suites::tcp::profile::ScenarioProfile>,
    /// Labs built (one per worker and IP version).
    pub labs: u64,
    /// Time spent building them, summed over the workers, in milliseconds.
    pub lab_setup_ms: f64,
}

impl fmt::Display for MatrixBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_cell_us = self.seconds * 1e6 / self.cells as f64;
        writeln!(
            f,
            "TCP matrix: {} cells (IPv4 + IPv6), {} workers: {:.2} s wall, {:.0} cells/s, {} disagreements",
            self.cells,
            self.workers,
            self.seconds,
            self.cells as f64 / self.seconds,
            self.disagreements
        )?;
        writeln!(
            f,
            "            {:.0} us per cell = {:.0} x the floor round trip ({:.1} us)  (goal: whole matrix <= 10 s)",
            per_cell_us,
            per_cell_us / self.floor_median_us,
            self.floor_median_us
        )?;
        if let Some(p) = &self.profile {
            writeln!(
                f,
                "lab set-up: {} labs, {:.1} ms summed over the workers",
                self.labs, self.lab_setup_ms
            )?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Runs the whole TCP matrix (Linux profile, IPv4 and IPv6) on `workers` labs at once,
/// after measuring the floor in the same run; with `profile`, also where the cells' time
/// went ([`crate::suites::tcp::profile`]).
pub fn tcp_matrix(workers: usize, profile: bool) -> Result<MatrixBench, BenchError> {
    use crate::models::profile::ProfileName;
    use crate::suites::tcp::matrix::{matrix, run_parallel};
    let floor = run(500)?;
    let mut cells = matrix(ProfileName::Linux, false);
    cells.extend(matrix(ProfileName::Linux, true));
    let setup_us = std::sync::atomic::AtomicU64::new(0);
    let labs = std::sync::atomic::AtomicU64::new(0);
    let factory = |ipv6: bool| -> Result<Box<dyn Dut>, DutError> {
        let needs = crate::engine::Needs::scenario(ipv6);
        let t0 = std::time::Instant::now();
        let target = LinuxHost::new(crate::dut::linux::lab_config_for(&needs))?;
        setup_us.fetch_add(
            t0.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        labs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Box::new(target))
    };
    crate::suites::tcp::profile::enable(profile);
    let started = std::time::Instant::now();
    let failures = run_parallel(&cells, workers, &factory);
    let seconds = started.elapsed().as_secs_f64();
    let phases = profile.then(crate::suites::tcp::profile::snapshot);
    crate::suites::tcp::profile::enable(false);
    let failures = failures?;
    Ok(MatrixBench {
        cells: cells.len(),
        workers,
        seconds,
        disagreements: failures.len(),
        floor_median_us: floor.floor_median_us,
        profile: phases,
        labs: labs.into_inner(),
        lab_setup_ms: setup_us.into_inner() as f64 / 1e3,
    })
}

/// Figures of the route-lookup benchmark.
#[derive(Debug, Clone)]
pub struct RouteBench {
    /// Routes installed (kernel and model).
    pub routes: usize,
    /// Time to install them through pipelined netlink, in milliseconds.
    pub install_ms: f64,
    /// Lookups per measurement.
    pub lookups: usize,
    /// Bare `route get` loop, one request in flight, lookups per second.
    pub bare_single_per_s: f64,
    /// The bare single loop over the IPv4 lookups only, and over the IPv6 ones only.
    pub bare_single_by_family_per_s: (f64, f64),
    /// Bare `route get` loop, pipelined, lookups per second.
    pub bare_pipelined_per_s: f64,
    /// Pipelined lookups, each compared with the model, per second.
    pub verified_per_s: f64,
    /// Threads (each with its own socket) of the parallel measurements.
    pub threads: usize,
    /// Bare pipelined lookups on `threads` sockets at once, per second.
    pub bare_parallel_per_s: f64,
    /// Verified lookups on `threads` sockets at once, per second.
    pub verified_parallel_per_s: f64,
}

impl fmt::Display for RouteBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "route table: {} routes installed in {:.1} ms ({:.0} routes/s)",
            self.routes,
            self.install_ms,
            self.routes as f64 / self.install_ms * 1e3
        )?;
        writeln!(
            f,
            "bare route get, 1 in flight   ({} x): {:>9.0} lookups/s",
            self.lookups, self.bare_single_per_s
        )?;
        writeln!(
            f,
            "  of which IPv4 only: {:>9.0} lookups/s, IPv6 only: {:>9.0} lookups/s",
            self.bare_single_by_family_per_s.0, self.bare_single_by_family_per_s.1
        )?;
        writeln!(
            f,
            "bare route get, {} per send   ({} x): {:>9.0} lookups/s",
            crate::sandbox::PIPELINE_WINDOW,
            self.lookups,
            self.bare_pipelined_per_s
        )?;
        writeln!(
            f,
            "verified (kernel + model)     ({} x): {:>9.0} lookups/s",
            self.lookups, self.verified_per_s
        )?;
        writeln!(
            f,
            "bare route get, pipelined, {} sockets at once: {:>9.0} lookups/s",
            self.threads, self.bare_parallel_per_s
        )?;
        writeln!(
            f,
            "verified, {} sockets at once:                 {:>9.0} lookups/s",
            self.threads, self.verified_parallel_per_s
        )?;
        writeln!(
            f,
            "ratio verified / bare, 1 socket: {:.2} (vs 1 in flight), {:.2} (vs pipelined); {} sockets: {:.2}  (goal: >= 300,000/s and >= 0.5)",
            self.verified_per_s / self.bare_single_per_s,
            self.verified_per_s / self.bare_pipelined_per_s,
            self.threads,
            self.verified_parallel_per_s / self.bare_parallel_per_s
        )
    }
}

/// A deterministic table of `n` routes for the lab (IPv4 and IPv6, every type), from a
/// seeded xorshift generator; duplicates the model would refuse are dropped later.
fn bench_routes(lab: &crate::sandbox::RouterLab, n: usize) -> Vec<crate::models::route::Route> {
    use crate::models::route::{Route, RouteKind};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let links = lab.segments().len();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = next();
        let link = (r % links as u64) as usize;
        let oif = lab.segments()[link].router_link.index;
        let v6 = r & 0x100 != 0;
        let bits = next();
        let (dst, gw) = if v6 {
            let len = 16 + (bits % 49) as u8;
            let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(next()) << 32));
            let IpAddr::V6(net) = crate::sandbox::router_v6(link).network() else {
                unreachable!("router_v6 is IPv6")
            };
            let gw = Ipv6Addr::from(u128::from(net) | u128::from(2 + (r >> 20) as u16 % 250));
            (ipnet::IpNet::new(IpAddr::V6(addr), len), IpAddr::V6(gw))
        } else {
            let len = 8 + (bits % 25) as u8;
            let addr = Ipv4Addr::from(0x1400_0000 | (next() as u32 & 0x03ff_ffff));
            let IpAddr::V4(net) = crate::sandbox::router_v4(link).network() else {
                unreachable!("router_v4 is IPv4")
            };
            let gw = Ipv4Addr::from(u32::from(net) | (2 + ((r >> 20) % 250) as u32));
            (ipnet::IpNet::new(IpAddr::V4(addr), len), IpAddr::V4(gw))
        };
        let Ok(dst) = dst else { continue };
        let kind = match (r >> 32) % 20 {
            0 => RouteKind::Blackhole,
            1 => RouteKind::Unreachable,
            2 => RouteKind::Prohibit,
            3 => RouteKind::Unicast { gateway: None, oif },
            _ => RouteKind::Unicast {
                gateway: Some(gw),
                oif,
            },
        };
        out.push(Route {
            dst: dst.trunc(),
            kind,
            metric: Some(((r >> 40) % 4) as u32 * 10 + 1),
            prefsrc: None,
        });
    }
    out
}

/// Runs the route-lookup benchmark: a router lab with three links, a table of `routes`
/// generated routes, then `lookups` edge-biased lookups measured three ways, alternated
/// over three rounds (the best round of each is reported).
pub fn routes(routes: usize, lookups: usize) -> Result<RouteBench, BenchError> {
    use crate::models::route::RouteProfile;
    use crate::sandbox::{PIPELINE_WINDOW, RouterConfig, RouterLab};
    use crate::suites::route::table::{
        accepted_routes, edge_destinations, verify, verify_parallel,
    };
    let mut lab = RouterLab::build(RouterConfig::dual_stack(3)).map_err(DutError::from)?;
    let mut model = lab.model(RouteProfile::linux());
    let table = accepted_routes(&mut model, &bench_routes(&lab, routes));
    let started = std::time::Instant::now();
    let outcomes = lab
        .router_rtnl()
        .install_routes(&table)
        .map_err(DutError::from)?;
    let install_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some((r, e)) = table
        .iter()
        .zip(&outcomes)
        .find_map(|(r, o)| o.err().map(|e| (r, e)))
    {
        return Err(BenchError::Check(format!("the kernel refused {r}: {e}")));
    }
    let edges = edge_destinations(&table);
    let queries: Vec<_> = edges
        .iter()
        .cycle()
        .take(lookups.max(1000))
        .map(|d| (*d, None))
        .collect();
    let n = queries.len();
    let (mut single, mut piped, mut verified) = (0f64, 0f64, 0f64);
    let mut by_family = (0f64, 0f64);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4);
    let mut sockets = (0..threads)
        .map(|_| lab.open_router_rtnl())
        .collect::<Result<Vec<_>, _>>()
        .map_err(DutError::from)?;
    let (mut bare_parallel, mut verified_parallel) = (0f64, 0f64);
    for _ in 0..3 {
        let part = n.div_ceil(threads);
        let t = std::time::Instant::now();
        let bare: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = sockets
                .iter_mut()
                .zip(queries.chunks(part))
                .map(|(rtnl, chunk)| {
                    scope.spawn(move || rtnl.lookup_many(chunk, PIPELINE_WINDOW).map(|v| v.len()))
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        for r in bare {
            match r {
                Ok(r) => {
                    r.map_err(DutError::from)?;
                }
                Err(_) => return Err(BenchError::Check("a lookup thread panicked".into())),
            }
        }
        bare_parallel = bare_parallel.max(n as f64 / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        match verify_parallel(&mut sockets, &model, &queries, PIPELINE_WINDOW)
            .map_err(DutError::from)?
        {
            Ok(_) => {}
            Err(m) => return Err(BenchError::Check(m.to_string())),
        }
        verified_parallel = verified_parallel.max(n as f64 / t.elapsed().as_secs_f64());
        for v6 in [false, true] {
            let t = std::time::Instant::now();
            let mut k = 0usize;
            for &(d, s) in queries.iter().filter(|q| q.0.is_ipv6() == v6) {
                let _ =
                    std::hint::black_box(lab.router_rtnl().lookup(d, s).map_err(DutError::from)?);
                k += 1;
            }
            let rate = k as f64 / t.elapsed().as_secs_f64();
            if v6 {
                by_family.1 = by_family.1.max(rate);
            } else {
                by_family.0 = by_family.0.max(rate);
            }
        }
        let t = std::time::Instant::now();
        for &(d, s) in &queries {
            let _ = std::hint::black_box(lab.router_rtnl().lookup(d, s).map_err(DutError::from)?);
        }
        single = single.max(n as f64 / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        std::hint::black_box(
            lab.router_rtnl()
                .lookup_many(&queries, PIPELINE_WINDOW)
                .map_err(DutError::from)?,
        );
        piped = piped.max(n as f64 / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        match verify(lab.router_rtnl(), &model, &queries, PIPELINE_WINDOW)
            .map_err(DutError::from)?
        {
            Ok(_) => {}
            Err(m) => return Err(BenchError::Check(m.to_string())),
        }
        verified = verified.max(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok(RouteBench {
        routes: table.len(),
        install_ms,
        lookups: n,
        bare_single_per_s: single,
        bare_single_by_family_per_s: by_family,
        bare_pipelined_per_s: piped,
        verified_per_s: verified,
        threads,
        bare_parallel_per_s: bare_parallel,
        verified_parallel_per_s: verified_parallel,
    })
}
