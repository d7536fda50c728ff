//! The `netconform` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use netconform::dut::build::{DutKind, ExtraTarget};
use netconform::engine::{self, CheckReport};
use netconform::models::profile::ProfileName;
use netconform::suites;

/// Protocol conformance and fuzz harness for TCP/IP stacks.
///
/// netconform speaks for a peer host on one end of a veth pair, the stack under test sits
/// on the other end in a namespace of its own, and every frame the stack sends is compared
/// with what the RFCs say it must be.
#[derive(Parser, Debug)]
#[command(name = "netconform", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every conformance check against a stack; write report.html, report.json,
    /// junit.xml and every check's trace and pcap; print a summary table.
    ///
    /// Exit status: 0 when every check passed or failed only in a deviation the target's
    /// maintainers accept; 1 when a check failed; 2 when a check could not run (an error);
    /// 3 when nothing failed but some check was unsupported by the target. CI can tell
    /// them apart.
    Certify {
        /// The stack under test: `linux`, `smoltcp`, `openssl` (TLS only), `netstack3` (run by its own
        /// binary, netconform-netstack3), `pytcp` (PyTCP, pip install pmd-pytcp), `lwip` (lwIP, apt-get install liblwip-dev), `slirp` (libslirp, apt-get install slirp4netns), `passt` (apt-get install passt), or `external:CONFIG` (a stack driven
        /// by an agent; see docs/agent-protocol.md).
        #[arg(long, default_value = "linux", value_parser = parse_target)]
        target: DutKind,
        /// Where per-check traces (text and pcap) and summary.json are written.
        #[arg(long, default_value = "netconform-report")]
        out: PathBuf,
        /// How many checks run at the same time (each in its own namespaces). Default: 2, or
        /// the target's own number (`pytcp`: 4; an external configuration's `[stack] jobs`).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Only the checks whose id contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Print each failing check's normalised trace.
        #[arg(long, short)]
        verbose: bool,
        /// The reading of the RFCs the models follow: the RFC text, or Linux's documented
        /// deviations (each one named at the start of the run; its RFC section and the kernel
        /// function are documented on `Deviation`, `TimerDeviation` and `SwitchDeviation` in
        /// harness/models/). For the switch checks `rfc` means IEEE 802.1D as written.
        /// Default: `linux` against the Linux kernel, `rfc` against any other stack.
        #[arg(long, value_enum)]
        profile: Option<Profile>,
        /// The target's accepted deviations (TOML, see deviations/README.md). Default:
        /// `deviations/<target>.toml` when it exists, else the reviewed file netconform
        /// carries for linux, smoltcp and passt.
        #[arg(long)]
        deviations: Option<PathBuf>,
        /// Run the whole certification N times (a soak): each run's report goes to
        /// `OUT/run-K/`, and a table of verdict stability ends the output: for each check
        /// its majority verdict, how many runs differed from it and what they said, and
        /// the harness's retries; also written to `OUT/stability.json`. Exit status 4
        /// when any verdict flipped, else that of the runs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Keep every core busy with a spinning thread while the checks run (with
        /// `--repeat`: verdicts must not depend on the machine's load).
        #[arg(long)]
        hog: bool,
        /// Mutation analysis instead of a certification: each check runs on the DUT as it
        /// is, then once per spoil of what it observes (a frame dropped, duplicated,
        /// reordered, delayed or sent again late; one field changed; a call's outcome or a
        /// table entry misreported; a setting ignored; a service's byte flipped; see
        /// docs/mutation.md). Prints the kill matrix (which spoils made each check fail)
        /// and the kill rate of each family, and writes OUT/mutation.json. Exit status 5
        /// when a check passed on the DUT and no spoil made it fail (a vacuous check).
        #[arg(long)]
        mutate: bool,
        /// Also run the target's slow tier: the checks that wait out timers the stack runs
        /// on the wall clock and cannot shorten (lwIP's 120 s TIME-WAIT). Without it they
        /// are left out and the report lists them.
        #[arg(long)]
        slow: bool,
    },
    /// List the checks and the clauses they enforce.
    Checks,
    /// Run a saved scenario (a regression file under fixtures/tcp-regressions/ or
    /// fixtures/arp-regressions/, or any TCP or ARP scenario JSON) against a stack, model
    /// and stack side by side.
    ///
    /// Exit status: 0 when the stack agrees with the model, 1 when it does not, 2 on error.
    Replay {
        /// The scenario file (JSON).
        file: PathBuf,
        /// The stack under test: `linux`, `smoltcp`, `openssl` (TLS only), `netstack3` (run by its own
        /// binary, netconform-netstack3), `pytcp` (PyTCP, pip install pmd-pytcp), `lwip` (lwIP, apt-get install liblwip-dev), `slirp` (libslirp, apt-get install slirp4netns), `passt` (apt-get install passt), or `external:CONFIG` (a stack driven
        /// by an agent; see docs/agent-protocol.md).
        #[arg(long, default_value = "linux", value_parser = parse_target)]
        target: DutKind,
        /// Override the profile stored in the scenario.
        #[arg(long, value_enum)]
        profile: Option<Profile>,
    },
    /// TLS: check captures of any implementation against the key-schedule model.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Fuzz targets without libFuzzer: list them, run one on files, make seed corpora.
    Fuzz {
        #[command(subcommand)]
        command: FuzzCommand,
    },
    /// Work with saved certification reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Read and render captures.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Remove the namespaces that killed netconform runs left behind (and nothing else).
    Clean {
        /// Also remove namespaces of netconform processes that are still running.
        #[arg(long, conflicts_with = "pid")]
        all: bool,
        /// Only the namespaces that the (dead) run with this process id left.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Measure the round trip of one raw frame through veth to the kernel and back, and the
    /// harness's cost per exchange as a ratio to that floor.
    Bench {
        /// Exchanges per measurement.
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        /// Also run the whole TCP matrix against the kernel and report its wall time.
        #[arg(long)]
        tcp_matrix: bool,
        /// Workers for the TCP matrix (each with its own namespaces).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// With --tcp-matrix: also show where the cells' time goes, phase by phase.
        #[arg(long)]
        profile: bool,
        /// Measure route lookups instead: a bare `route get` loop and lookups verified
        /// against the route model, on a generated table.
        #[arg(long)]
        routes: bool,
        /// Routes in the generated table (with --routes).
        #[arg(long, default_value_t = 10_000)]
        table_size: usize,
        /// Lookups per measurement (with --routes).
        #[arg(long, default_value_t = 200_000)]
        lookups: usize,
    },
}

#[derive(Subcommand, Debug)]
enum TlsCommand {
    /// Decrypt every record of every TLS connection in a capture with the secrets of an
    /// SSLKEYLOGFILE (OpenSSL's `-keylogfile`, a browser's), verify both Finished messages,
    /// and print a verdict per connection. Exit status: 0 every connection passed, 1 a check
    /// failed, 2 a connection could not be checked to its end (missing secret, truncated
    /// capture), no TLS connection, or unreadable input.
    Verify {
        /// The capture (pcap or pcapng; Ethernet, Linux cooked or raw IP).
        #[arg(long)]
        pcap: PathBuf,
        /// A key log (NSS SSLKEYLOGFILE format); repeat for several (client's and server's).
        #[arg(long, required = true)]
        keylog: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FuzzCommand {
    /// List the fuzz targets and what each checks.
    List,
    /// Run one target's logic on input files (a crash artifact, a regression, a seed) and
    /// print its finding. Exit status: 0 no finding, 1 a finding, 2 unreadable input.
    Run {
        /// The target (see `netconform fuzz list`).
        target: String,
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A stack target's input as the scenario it stands for, run on the stack: its verdict
    /// and, for a disagreement, the scenario shrunk to the fewest events that still fall
    /// in the same group, written where `netconform replay --target STACK` replays it.
    /// Exit status: 0 no finding, 1 a finding, 2 unreadable input.
    Scenario {
        /// The stack target (`stack_smoltcp`).
        target: String,
        /// The input file (a crash artifact, a finding's `smallest` or `first`).
        file: PathBuf,
        /// Where to write the scenario JSON (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the scenario as decoded, unshrunk.
        #[arg(long)]
        no_shrink: bool,
    },
    /// Summarise a stack targets' findings directory (`NETCONFORM_FINDINGS`): one line per
    /// group (clause, state, what differed) with its count and the commands that reproduce
    /// and minimise it.
    Findings {
        /// The directory.
        dir: PathBuf,
        /// Write Markdown (for ci/fuzz-overnight's summary).
        #[arg(long)]
        markdown: bool,
        /// Shrink each group's smallest input and say whether it is a cell of the TCP
        /// matrix (which certify shows too) or beyond it.
        #[arg(long)]
        matrix: bool,
    },
    /// Seeds of the stack targets from the harness's own TCP scenarios: the path into
    /// every state and each segment kind in order there (IPv4 and IPv6), and every saved
    /// regression, written to `OUT/<stack target>/`.
    StackSeeds {
        /// Saved TCP scenarios (`*.json`).
        #[arg(long, default_value = "fixtures/tcp-regressions")]
        regressions: PathBuf,
        /// Corpus root (usually `corpora`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Cut the frames of recorded traces (the pcaps `netconform certify --out DIR` writes)
    /// into seed inputs for every target, one per distinct shape, and write them to
    /// `OUT/<target>/kernel-NNN`.
    Seeds {
        /// Directory of pcap files.
        #[arg(long)]
        from: PathBuf,
        /// Corpus root (usually `corpora`).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Put several targets side by side (Linux and smoltcp, say): one self-contained HTML
    /// page with a row per check and per clause and a column per report, from the
    /// `report.json` files `certify --out DIR` wrote.
    Compare {
        /// The reports (`DIR/report.json`, or the directory itself).
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// The page to write.
        #[arg(long, default_value = "comparison.html")]
        out: PathBuf,
        /// Also write the table as Markdown to this file (docs/stacks.md is one).
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TraceCommand {
    /// Print a capture (pcap or pcapng) in netconform's normalised form.
    Show {
        /// The capture file.
        file: PathBuf,
        /// Print the decoded fields of every frame as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Profile {
    /// RFC 9293 and RFC 5961 as written (IEEE 802.1D as written for the switch checks).
    Rfc,
    /// Linux 6.x: the RFC (or 802.1D) plus each documented Linux deviation.
    Linux,
}

impl From<Profile> for ProfileName {
    fn from(p: Profile) -> Self {
        match p {
            Profile::Rfc => ProfileName::Rfc,
            Profile::Linux => ProfileName::Linux,
        }
    }
}

fn main() -> ExitCode {
    main_with(&[])
}

/// Targets whose adapter is a binary of its own next to `netconform` (a workspace member
/// with needs of its own), and the command that builds it: `--target NAME` runs that
/// binary with the same arguments.
const SIBLING_TARGETS: &[(&str, &str, &str)] = &[(
    "netstack3",
    "netconform-netstack3",
    "cargo build --release -p netconform-netstack3 --ignore-rust-version",
)];

/// Fuzz targets that live in a sibling target's binary (its crate adds them), by the
/// sibling's `--target` name: `netconform fuzz run|scenario|findings ...` naming one runs
/// that binary with the same arguments.
const SIBLING_FUZZ_TARGETS: &[(&str, &str)] = &[
    ("stack_netstack3", "netstack3"),
    ("stack_smoltcp_netstack3", "netstack3"),
];

/// The targets the binary that runs this command line added (`netconform-netstack3`).
static EXTRA_TARGETS: std::sync::OnceLock<&'static [ExtraTarget]> = std::sync::OnceLock::new();

/// A `--target` value: one of the extra targets, else [`DutKind::parse`].
fn parse_target(text: &str) -> Result<DutKind, String> {
    let extra = EXTRA_TARGETS.get().copied().unwrap_or_default();
    match extra.iter().find(|t| t.name == text) {
        Some(target) => Ok(DutKind::Extra(*target)),
        None => DutKind::parse(text),
    }
}

/// The command line, with `extra` targets added to `--target` (the binary of a workspace
/// member that links one, `netconform-netstack3`, calls this; `netconform` itself has
/// none, and hands a sibling target over to its binary).
pub fn main_with(extra: &'static [ExtraTarget]) -> ExitCode {
    let _ = EXTRA_TARGETS.set(extra);
    if let Some(code) = hand_over_to_sibling(extra) {
        return code;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netconform: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--target NAME` for a sibling target this binary does not have: run its binary next to
/// this one with the same arguments (never returns then), or say how to build it.
fn hand_over_to_sibling(extra: &[ExtraTarget]) -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let fuzz_target = || {
        if args.get(1).and_then(|a| a.to_str()) != Some("fuzz") {
            return None;
        }
        args.iter().find_map(|a| {
            let a = a.to_str()?;
            SIBLING_FUZZ_TARGETS
                .iter()
                .find(|(t, _)| *t == a && netconform::fuzz::target(t).is_none())
                .map(|(_, sibling)| *sibling)
        })
    };
    let named = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            let a = a.to_str()?;
            match a.strip_prefix("--target=") {
                Some(v) => Some(v),
                None if a == "--target" => args.get(i + 1)?.to_str(),
                None => None,
            }
        })
        .or_else(fuzz_target)?;
    let &(name, binary, build) = SIBLING_TARGETS
        .iter()
        .find(|(n, _, _)| *n == named && !extra.iter().any(|t| t.name == *n))?;
    let exe = std::env::current_exe().ok();
    let sibling = exe
        .as_deref()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join(binary));
    match sibling {
        Some(path) if path.is_file() => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(&path).args(&args[1..]).exec();
            eprintln!("netconform: running {}: {err}", path.display());
        }
        _ => eprintln!(
            "netconform: the {name} target is the binary {binary}, which is not next to this \
             one ({}); build it with `{build}` (its crates need `--ignore-rust-version`, see \
             README)",
            exe.as_deref()
                .map_or("?".into(), |p| p.display().to_string())
        ),
    }
    Some(ExitCode::from(2))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Certify {
            target,
            out,
            jobs,
            only,
            verbose,
            profile,
            deviations,
            repeat,
            hog,
            mutate,
            slow,
        } => {
            let only = Selection { only, slow };
            let jobs = jobs.unwrap_or_else(|| target.default_jobs());
            let _hog = hog.then(CpuHog::start);
            let profile = profile.map_or_else(
                || match target {
                    DutKind::Linux => ProfileName::Linux,
                    _ => ProfileName::Rfc,
                },
                Into::into,
            );
            if mutate {
                return mutation(&target, &out, jobs, &only, profile);
            }
            if repeat > 1 {
                return soak(
                    &target,
                    &out,
                    jobs,
                    &only,
                    profile,
                    deviations.as_deref(),
                    repeat,
                );
            }
            certify(
                target,
                &out,
                jobs,
                &only,
                verbose,
                profile,
                deviations.as_deref(),
            )
            .map(|(_, code)| code)
        }
        Command::Replay {
            file,
            target,
            profile,
        } => replay(&file, target, profile.map(Into::into)),
        Command::Checks => {
            for spec in suites::catalogue() {
                println!("{}  {}", spec.id, spec.title);
                for clause in spec.clauses {
                    println!("    {:<28} {}", clause.id, clause.source);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tls {
            command: TlsCommand::Verify { pcap, keylog, json },
        } => {
            let keylogs: Vec<&std::path::Path> = keylog.iter().map(PathBuf::as_path).collect();
            let report = netconform::tls::report::verify_capture(&pcap, &keylogs)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(ExitCode::from(report.exit_code()))
        }
        Command::Fuzz { command } => fuzz(command),
        Command::Report {
            command:
                ReportCommand::Compare {
                    reports,
                    out,
                    markdown,
                },
        } => {
            let paths: Vec<PathBuf> = reports
                .into_iter()
                .map(|p| if p.is_dir() { p.join("report.json") } else { p })
                .collect();
            let page = netconform::report::compare::compare_paths(&paths)?;
            std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?;
            if let Some(md) = markdown {
                let text = netconform::report::compare::markdown_paths(&paths)?;
                std::fs::write(&md, text).with_context(|| format!("writing {}", md.display()))?;
                println!("the same table in Markdown: {}", md.display());
            }
            println!(
                "comparison of {} reports written to {}",
                paths.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace {
            command: TraceCommand::Show { file, json },
        } => {
            let text = netconform::trace::show(&file, json)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean { all, pid } => {
            let removed = match (all, pid) {
                (true, _) => netconform::sandbox::clean_all()?,
                (false, Some(pid)) => netconform::sandbox::clean_pid(pid)?,
                (false, None) => netconform::sandbox::clean()?,
            };
            if removed.is_empty() {
                println!("nothing to clean");
            }
            for name in removed {
                println!("removed namespace {name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            iterations,
            tcp_matrix,
            workers,
            profile,
            routes,
            table_size,
            lookups,
        } => {
            netconform::sandbox::check_privileges()?;
            if routes {
                print!("{}", netconform::bench::routes(table_size, lookups)?);
                return Ok(ExitCode::SUCCESS);
            }
            let report = netconform::bench::run(iterations)?;
            print!("{report}");
            if tcp_matrix {
                print!("{}", netconform::bench::tcp_matrix(workers, profile)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fuzz(command: FuzzCommand) -> Result<ExitCode> {
    use netconform::fuzz;
    match command {
        FuzzCommand::List => {
            for t in fuzz::targets() {
                println!("{:<16} {:?}  {}", t.name, t.kind, t.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        FuzzCommand::Run { target, files } => {
            let t = fuzz::target(&target).with_context(|| {
                format!("no fuzz target {target:?} (see `netconform fuzz list`)")
            })?;
            let mut found = false;
            for file in &files {
                let data =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                if let Some(pair) = fuzz::stacks::pair_target(&target) {
                    let scenario = fuzz::stacks::input::decode(&data, pair.a.profile);
                    let verdict = fuzz::stacks::pair::judge_pair(pair, &scenario);
                    println!(
                        "{:<8} {}: {}",
                        pair_word(&verdict),
                        file.display(),
                        verdict.line()
                    );
                    if let fuzz::stacks::PairVerdict::Differ(d) = &verdict {
                        println!("  step: {}", d.step);
                        for line in &d.differences {
                            println!("  {line}");
                        }
                    }
                    found |= pair_word(&verdict) != "ok";
                    continue;
                }
                if let Some(stack) = fuzz::stacks::stack(&target) {
                    let (_, verdict) = fuzz::stacks::judge(stack, &data);
                    println!(
                        "{:<8} {}: {}",
                        verdict_word(&verdict),
                        file.display(),
                        verdict.line()
                    );
                    found |= !matches!(
                        verdict,
                        fuzz::stacks::Verdict::Agreed
                            | fuzz::stacks::Verdict::Accepted(_)
                            | fuzz::stacks::Verdict::Refused(_)
                    );
                    continue;
                }
                match (t.run)(&data) {
                    Ok(allowed) => {
                        let known: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
                        println!("ok       {} (known differences: {known:?})", file.display());
                    }
                    Err(finding) => {
                        found = true;
                        println!("FINDING  {}: {}", file.display(), finding.what);
                    }
                }
            }
            Ok(ExitCode::from(u8::from(found)))
        }
        FuzzCommand::Scenario {
            target,
            file,
            out,
            no_shrink,
        } => fuzz_scenario(&target, &file, out.as_deref(), no_shrink),
        FuzzCommand::Findings {
            dir,
            markdown,
            matrix,
        } => {
            let groups = fuzz::stacks::findings::summarise(&dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            let cells: Option<Vec<Option<String>>> = matrix.then(|| {
                groups
                    .iter()
                    .map(|g| {
                        let data = std::fs::read(g.dir.join("smallest")).ok()?;
                        fuzz::stacks::matrix_cell(fuzz::stacks::stack(&g.target)?, &data)
                    })
                    .collect()
            });
            print!(
                "{}",
                fuzz::stacks::render_findings(&groups, cells.as_deref(), markdown)
            );
            Ok(ExitCode::SUCCESS)
        }
        FuzzCommand::StackSeeds { regressions, out } => {
            let mut saved = Vec::new();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&regressions)
                .with_context(|| format!("reading {}", regressions.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path)?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", path.display()))?;
                let run = netconform::suites::tcp::scenario::TcpScenarioRun::from_json(&value)
                    .with_context(|| format!("{} is no TCP scenario", path.display()))?;
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string());
                let stem = stem.unwrap_or_default();
                saved.push((
                    stem.trim_start_matches("regression-").to_string(),
                    run.scenario,
                ));
            }
            let seeds = fuzz::stacks::seeds::seeds(&saved);
            let pairs = fuzz::targets()
                .filter(|t| fuzz::stacks::pair_target(t.name).is_some())
                .map(|t| t.name);
            for name in fuzz::stacks::stacks().map(|t| t.name).chain(pairs) {
                let dir = out.join(name);
                std::fs::create_dir_all(&dir)?;
                for (name, bytes) in &seeds {
                    std::fs::write(dir.join(name), bytes)?;
                }
                println!("{} seeds written under {}", seeds.len(), dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        FuzzCommand::Seeds { from, out } => {
            let mut seeds = fuzz::seeds::Seeds::new();
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&from)
                .with_context(|| format!("reading {}", from.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
                .collect();
            entries.sort();
            for path in &entries {
                let trace = netconform::trace::Trace::read_capture(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let frames: Vec<(u64, Vec<u8>)> = trace
                    .frames()
                    .map(|(at, _, b)| (at.total_micros(), b.to_vec()))
                    .collect();
                seeds.add_trace(&frames);
            }
            let files = seeds.files();
            for (target, name, bytes) in &files {
                let dir = out.join(target);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join(name), bytes)?;
            }
            println!(
                "{} seeds from {} traces written under {}",
                files.len(),
                entries.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ok`, `FINDING` or `CRASH` for a pair target's verdict.
fn pair_word(verdict: &netconform::fuzz::stacks::PairVerdict) -> &'static str {
    use netconform::fuzz::stacks::PairVerdict;
    match verdict {
        PairVerdict::Same | PairVerdict::NotCompared(_) => "ok",
        PairVerdict::Differ(_) => "FINDING",
        PairVerdict::Crashed(_) => "CRASH",
    }
}

/// `ok`, `FINDING` or `CRASH` for a stack target's verdict.
fn verdict_word(verdict: &netconform::fuzz::stacks::Verdict) -> &'static str {
    use netconform::fuzz::stacks::Verdict;
    match verdict {
        Verdict::Agreed | Verdict::Accepted(_) | Verdict::Refused(_) => "ok",
        Verdict::Disagreed(_) | Verdict::KnownPanic(_) => "FINDING",
        Verdict::Crashed(_) => "CRASH",
    }
}

/// `netconform fuzz scenario`: the verdict of one input and its (shrunk) scenario.
fn fuzz_scenario(
    target: &str,
    file: &std::path::Path,
    out: Option<&std::path::Path>,
    no_shrink: bool,
) -> Result<ExitCode> {
    use netconform::fuzz::stacks::{self, Verdict};
    if let Some(pair) = stacks::pair_target(target) {
        return fuzz_pair_scenario(pair, file, out, no_shrink);
    }
    let stack = stacks::stack(target)
        .with_context(|| format!("no stack target {target:?} (see `netconform fuzz list`)"))?;
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (scenario, verdict) = stacks::judge(stack, &data);
    println!(
        "{:<8} {}: {}",
        verdict_word(&verdict),
        file.display(),
        verdict.line()
    );
    let run = match &verdict {
        Verdict::Disagreed(d) if !no_shrink => {
            for line in &d.differences {
                println!("  {line}");
            }
            stacks::shrink(stack, &scenario, &d.group)
        }
        _ => netconform::suites::tcp::scenario::TcpScenarioRun {
            scenario,
            peer_port: netconform::suites::tcp::scenario::REPLAY_PEER_PORT,
        },
    };
    write_scenario(&run, out, |path| {
        format!("replay: netconform replay --target {} {path}", stack.stack)
    })?;
    Ok(ExitCode::from(u8::from(verdict_word(&verdict) != "ok")))
}

/// `netconform fuzz scenario` on a pair target: the pair's verdict and its (shrunk)
/// scenario, which each stack replays agreeing with the model.
fn fuzz_pair_scenario(
    pair: &'static netconform::fuzz::stacks::PairTarget,
    file: &std::path::Path,
    out: Option<&std::path::Path>,
    no_shrink: bool,
) -> Result<ExitCode> {
    use netconform::fuzz::stacks::{self, PairVerdict};
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let scenario = stacks::input::decode(&data, pair.a.profile);
    let verdict = stacks::pair::judge_pair(pair, &scenario);
    println!(
        "{:<8} {}: {}",
        pair_word(&verdict),
        file.display(),
        verdict.line()
    );
    let run = match &verdict {
        PairVerdict::Differ(d) => {
            println!("  step: {}", d.step);
            for line in &d.differences {
                println!("  {line}");
            }
            if no_shrink {
                None
            } else {
                Some(stacks::pair::shrink_pair(pair, &scenario, &d.group))
            }
        }
        _ => None,
    };
    let run = run.unwrap_or(netconform::suites::tcp::scenario::TcpScenarioRun {
        scenario,
        peer_port: netconform::suites::tcp::scenario::REPLAY_PEER_PORT,
    });
    write_scenario(&run, out, |path| {
        format!(
            "each stack replays it agreeing with the model: \
             netconform replay --target {} --profile rfc {path}; netconform replay --target {} --profile rfc {path}",
            pair.a.stack, pair.b.stack
        )
    })?;
    Ok(ExitCode::from(u8::from(pair_word(&verdict) != "ok")))
}

/// Writes `run` as JSON to `out` and says how many events went there and, by `replay`
/// (given the file's path), how to replay them; without `out`, prints the JSON.
fn write_scenario(
    run: &netconform::suites::tcp::scenario::TcpScenarioRun,
    out: Option<&std::path::Path>,
    replay: impl Fn(&std::path::Display<'_>) -> String,
) -> Result<()> {
    use netconform::engine::scenario::Scenario;
    let json = serde_json::to_string_pretty(&run.to_json())?;
    match out {
        Some(path) => {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "{} events written to {}; {}",
                run.scenario.events.len(),
                path.display(),
                replay(&path.display())
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

fn replay(file: &std::path::Path, kind: DutKind, profile: Option<ProfileName>) -> Result<ExitCode> {
    use netconform::engine::scenario::{ScenarioOutcome, replay};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut scenario = suites::load_scenario(&text)
        .with_context(|| format!("{} is not a netconform scenario", file.display()))?;
    if let Some(p) = profile {
        scenario.set_profile(p);
    }
    if kind.needs_netns() {
        netconform::sandbox::check_privileges()?;
    }
    let mut target = kind.build(&scenario.needs())?;
    let replayed = replay(
        scenario.as_ref(),
        target.as_mut(),
        profile.unwrap_or(ProfileName::Linux),
    );
    println!(
        "{} {} ({:?} profile, {} steps)",
        scenario.kind(),
        scenario.name(),
        replayed.profile,
        scenario.len()
    );
    println!("{}", replayed.trace);
    match replayed.result {
        Ok(ScenarioOutcome::Agreed { summary }) => {
            println!("PASS: the stack agrees with the model ({summary})");
            Ok(ExitCode::SUCCESS)
        }
        Ok(ScenarioOutcome::Inconclusive { reason }) => {
            println!("INCONCLUSIVE: {reason}");
            Ok(ExitCode::from(2))
        }
        Err(netconform::engine::CheckError::Dut { step, source }) => {
            Err(anyhow::anyhow!("{step}: {source}"))
        }
        Err(e) => {
            println!("FAIL: {}", e.to_string().replace("; ", "\n"));
            Ok(ExitCode::from(1))
        }
    }
}

/// The accepted deviations of `kind`: the file given, else `deviations/<target>.toml` in
/// the working directory when it exists, else the reviewed file built into netconform for
/// the built-in targets, else none. Every entry must name a check of the catalogue.
fn load_deviations(
    kind: &DutKind,
    given: Option<&std::path::Path>,
) -> Result<netconform::report::Deviations> {
    use netconform::report::{Deviations, deviations};
    let file = std::path::Path::new("deviations").join(deviations::file_name_for(&kind.label()));
    let loaded = if let Some(path) = given {
        Deviations::load(path)?
    } else if file.exists() {
        Deviations::load(&file)?
    } else {
        let built_in = match kind {
            DutKind::Linux => Some(include_str!("../deviations/linux.toml")),
            DutKind::Smoltcp => Some(include_str!("../deviations/smoltcp.toml")),
            DutKind::Passt(_) => Some(include_str!("../deviations/passt.toml")),
            DutKind::Extra(target) => target.deviations,
            DutKind::External(c) if c.stack == "pytcp" => {
                Some(include_str!("../deviations/pytcp.toml"))
            }
            DutKind::External(c) if c.stack == "lwip" => {
                Some(include_str!("../deviations/lwip.toml"))
            }
            DutKind::Openssl | DutKind::External(_) | DutKind::Slirp(_) => None,
        };
        match built_in {
            Some(text) => Deviations::parse(text, &file)?,
            None => Deviations::none(),
        }
    };
    let ids: Vec<&str> = suites::catalogue().iter().map(|c| c.id).collect();
    loaded.check_ids(&ids)?;
    Ok(loaded)
}

/// Which checks a certification runs: those whose id contains `only` (all without it),
/// the target's slow tier only when `slow`.
struct Selection {
    only: Option<String>,
    slow: bool,
}

/// The checks `selection` picks on `kind`, and the ids of its slow tier it left out, once
/// the privileges `kind` needs are there; none is an error that says where to look.
fn selected_checks(
    kind: &DutKind,
    selection: &Selection,
) -> Result<(Vec<engine::CheckSpec>, Vec<String>)> {
    if kind.needs_netns() {
        netconform::sandbox::check_privileges()?;
    }
    let only = selection.only.as_deref();
    let (checks, slow): (Vec<_>, Vec<_>) = suites::catalogue()
        .into_iter()
        .filter(|c| only.is_none_or(|o| c.id.contains(o)))
        .partition(|c| selection.slow || !kind.is_slow(c.id));
    anyhow::ensure!(
        !checks.is_empty(),
        "no check matches {:?} (see `netconform checks`){}",
        only.unwrap_or(""),
        if slow.is_empty() {
            String::new()
        } else {
            format!(
                "; {} are in {}'s slow tier: add --slow",
                slow.len(),
                kind.label()
            )
        }
    );
    Ok((checks, slow.iter().map(|c| c.id.to_string()).collect()))
}

#[allow(clippy::too_many_arguments)]
fn certify(
    kind: DutKind,
    out: &std::path::Path,
    jobs: usize,
    selection: &Selection,
    verbose: bool,
    profile: ProfileName,
    deviations_file: Option<&std::path::Path>,
) -> Result<(netconform::report::Report, ExitCode)> {
    let (checks, slow_not_run) = selected_checks(&kind, selection)?;
    let name = kind.label();
    println!(
        "netconform certify: {} checks against {name}, {jobs} at a time, {profile:?} profile",
        checks.len()
    );
    let deviations = suites::accepted_deviations(&checks, profile);
    if !deviations.is_empty() {
        println!(
            "accepted deviations from the RFC and IEEE texts ({profile:?} profile, {}):",
            deviations.len()
        );
        for line in &deviations {
            println!("  {line}");
        }
    }
    let factory = |spec: &engine::CheckSpec| kind.build(&spec.needs);
    let accepted = load_deviations(&kind, deviations_file)?;
    let progress = Bar::new(checks.len());
    let summary = engine::run_checks(&name, &checks, &factory, jobs, profile, &progress);
    progress.bar.finish_and_clear();
    let mut report = netconform::report::Report::build(&summary, &accepted);
    report.slow_not_run = slow_not_run;
    netconform::report::write_dir(&summary, &report, out)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    println!();
    print!(
        "{}",
        netconform::report::table::render(&report, out, verbose)
    );
    println!(
        "report: {0}/report.html, {0}/report.json, {0}/junit.xml",
        out.display()
    );
    let code = exit_code(report.counts.status());
    Ok((report, code))
}

/// `certify --mutate`: the kill matrix of the selected checks on `kind`.
fn mutation(
    kind: &DutKind,
    out: &std::path::Path,
    jobs: usize,
    selection: &Selection,
    profile: ProfileName,
) -> Result<ExitCode> {
    let (checks, _) = selected_checks(kind, selection)?;
    let runs: usize = checks.len()
        + checks
            .iter()
            .map(|c| engine::mutate::spoils_for(&c.needs).len())
            .sum::<usize>();
    let name = kind.label();
    println!(
        "netconform certify --mutate: {} checks against {name}, at most {runs} runs, {jobs} at a time, {profile:?} profile",
        checks.len()
    );
    let factory = |spec: &engine::CheckSpec| kind.build(&spec.needs);
    let bar = indicatif::ProgressBar::new(runs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress =
        |spec: &engine::CheckSpec, spoil: Option<netconform::dut::spoil::Spoil>, mark: &str| {
            bar.inc(1);
            bar.set_message(format!(
                "{} {} {mark}",
                spec.id,
                spoil.map_or_else(|| "baseline".to_string(), |s| s.name()),
            ));
        };
    let matrix = engine::mutate::mutate(
        &name,
        &checks,
        &factory,
        &suites::machinery_of,
        jobs,
        profile,
        &progress,
    );
    bar.finish_and_clear();
    print!("{}", matrix.render());
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("mutation.json");
    std::fs::write(&path, serde_json::to_string_pretty(&matrix)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("kill matrix: {}", path.display());
    Ok(if matrix.vacuous().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(5)
    })
}

/// The exit status of a certification whose worst outcome is `status`.
fn exit_code(status: netconform::report::Status) -> ExitCode {
    ExitCode::from(exit_status(status))
}

fn exit_status(status: netconform::report::Status) -> u8 {
    match status {
        netconform::report::Status::Error => 2,
        netconform::report::Status::Fail => 1,
        netconform::report::Status::Unsupported => 3,
        netconform::report::Status::Pass => 0,
    }
}

/// `certify --repeat N`: N certifications in a row, each into `out/run-K/`, then the
/// stability of every verdict (see [`netconform::report::stability`]).
#[allow(clippy::too_many_arguments)]
fn soak(
    kind: &DutKind,
    out: &std::path::Path,
    jobs: usize,
    selection: &Selection,
    profile: ProfileName,
    deviations_file: Option<&std::path::Path>,
    repeat: u32,
) -> Result<ExitCode> {
    let mut reports = Vec::new();
    let mut worst = 0u8;
    for k in 1..=repeat {
        println!("\n== soak: run {k} of {repeat}");
        let dir = out.join(format!("run-{k}"));
        let (report, _) = certify(
            kind.clone(),
            &dir,
            jobs,
            selection,
            false,
            profile,
            deviations_file,
        )?;
        worst = worst.max(exit_status(report.counts.status()));
        reports.push(report);
    }
    let stability = netconform::report::stability::Stability::of(&reports);
    let json = serde_json::to_string_pretty(&stability)?;
    std::fs::write(out.join("stability.json"), json + "\n")
        .with_context(|| format!("writing {}", out.join("stability.json").display()))?;
    println!("\n== verdict stability over {repeat} runs\n");
    print!("{}", stability.render());
    println!("stability: {}", out.join("stability.json").display());
    Ok(if stability.total_flips() > 0 {
        ExitCode::from(4)
    } else {
        ExitCode::from(worst)
    })
}

/// One spinning thread per core for as long as it lives: the load under which `certify
/// --repeat --hog` shows that verdicts do not flip.
struct CpuHog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuHog {
    fn start() -> CpuHog {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        println!("keeping {cores} cores busy while the checks run");
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6364136223846793005).wrapping_add(1),
                            );
                        }
                    }
                })
            })
            .collect();
        CpuHog { stop, threads }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The progress of a certify run: a bar with the checks running now and the clause each
/// one checks (on a terminal), and one line per finished check (always).
struct Bar {
    bar: indicatif::ProgressBar,
    running: std::sync::Mutex<Vec<(&'static str, &'static str)>>,
}

impl Bar {
    fn new(total: usize) -> Bar {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar {
            bar,
            running: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn show_running(&self, running: &[(&'static str, &'static str)]) {
        let text: Vec<String> = running
            .iter()
            .map(|(id, clause)| format!("{id} [{clause}]"))
            .collect();
        self.bar.set_message(text.join(", "));
    }
}

impl engine::Progress for Bar {
    fn started(&self, spec: &engine::CheckSpec) {
        let clause = spec.clauses.first().map_or("", |c| c.source);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.push((spec.id, clause));
        self.show_running(&running);
    }

    fn finished(&self, r: &CheckReport) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|(id, _)| *id != r.id);
        self.bar.inc(1);
        let line = format!(
            "[{:>3}/{}] {:<11} {}  ({} ms)",
            self.bar.position(),
            self.bar.length().unwrap_or(0),
            r.verdict.label(),
            r.id,
            r.duration_ms
        );
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
        self.show_running(&running);
    }
}
