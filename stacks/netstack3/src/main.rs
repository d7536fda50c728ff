//! `netconform-netstack3`: netconform's command line with one more target, `netstack3`
//! (Fuchsia's Netstack3 in-process, [`netconform_netstack3`]). `netconform --target
//! netstack3 ...` runs this binary with the same arguments.

/// netconform's own command line (harness/main.rs, compiled here as a module so that both
/// binaries run the same code).
#[allow(dead_code)]
#[path = "../../../harness/main.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    netconform_netstack3::fuzz::register();
    cli::main_with(&[netconform_netstack3::TARGET])
}
