//! Builds the C shim of `netconform-agent-lwip` (agents/lwip/shim.c) and links lwIP into
//! that binary only, when `pkg-config --exists lwip` says Debian's liblwip-dev is there.
//! Without it nothing is compiled or linked: the agent builds without lwIP and says how to
//! install it when started. Every other target of the package is untouched (the link
//! arguments are `rustc-link-arg-bin` for the agent alone).

use std::process::Command;

const AGENT: &str = "netconform-agent-lwip";

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new("pkg-config").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=agents/lwip/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    println!("cargo:rustc-check-cfg=cfg(netconform_lwip)");
    if pkg_config(&["--exists", "lwip"]).is_none() {
        // Installing liblwip-dev later adds lwip.pc to one of pkg-config's directories:
        // watching them builds the agent with lwIP on the next build instead of never.
        for dir in pkg_config(&["--variable=pc_path", "pkg-config"])
            .unwrap_or_default()
            .split(':')
            .filter(|d| std::path::Path::new(d).is_dir())
        {
            println!("cargo:rerun-if-changed={dir}");
        }
        return;
    }
    if let Some(dir) = pkg_config(&["--variable=pcfiledir", "lwip"]) {
        println!("cargo:rerun-if-changed={dir}/lwip.pc");
    }
    let mut build = cc::Build::new();
    build.file("agents/lwip/shim.c").cargo_metadata(false);
    for flag in pkg_config(&["--cflags", "lwip"])
        .unwrap_or_default()
        .split_whitespace()
    {
        match flag.strip_prefix("-I") {
            Some(dir) => build.include(dir),
            None => build.flag(flag),
        };
    }
    build.compile("ncf_lwip_shim");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-arg-bin={AGENT}={out}/libncf_lwip_shim.a");
    for flag in pkg_config(&["--libs", "lwip"])
        .unwrap_or_default()
        .split_whitespace()
    {
        println!("cargo:rustc-link-arg-bin={AGENT}={flag}");
    }
    println!("cargo:rustc-link-arg-bin={AGENT}=-lpthread");
    println!("cargo:rustc-cfg=netconform_lwip");
}
