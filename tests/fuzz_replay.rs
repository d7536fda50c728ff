//! Every fuzz target's seeds (`corpora/<target>/`) and every input that ever crashed it or
//! made parsers disagree (`fuzz/regressions/<target>/`) replayed through the same library
//! function the fuzzer runs, without libFuzzer; and the fuzz crate kept in step with
//! `netconform::fuzz::targets()`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netconform::fuzz;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn replay(dir_of: impl Fn(&str) -> PathBuf) -> usize {
    let mut n = 0;
    let mut failures = Vec::new();
    for t in fuzz::targets() {
        for file in files_in(&dir_of(t.name)) {
            let data = std::fs::read(&file).expect("read input");
            n += 1;
            if let Err(finding) = (t.run)(&data) {
                failures.push(format!("{}: {finding}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    n
}

#[test]
fn every_seed_passes_its_target() {
    let n = replay(|name| root().join("corpora").join(name));
    assert!(n > 0, "no seeds replayed");
}

#[test]
fn every_regression_passes_its_target() {
    let n = replay(|name| root().join("fuzz/regressions").join(name));
    assert!(n > 0, "no regression replayed");
}

/// `fuzz/regressions/README.md` has one row per regression file, and every row's file exists.
#[test]
fn the_regression_index_lists_every_input() {
    let dir = root().join("fuzz/regressions");
    let index = std::fs::read_to_string(dir.join("README.md")).expect("index");
    let mut on_disk = BTreeSet::new();
    for t in fuzz::targets() {
        for f in files_in(&dir.join(t.name)) {
            let name = f.file_name().and_then(|n| n.to_str()).expect("name");
            on_disk.insert(format!("{}/{name}", t.name));
        }
    }
    let listed: BTreeSet<String> = index
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let (target, input) = (cells.get(1)?, cells.get(2)?.strip_prefix('`')?);
            Some(format!("{target}/{}", input.strip_suffix('`')?))
        })
        .collect();
    assert_eq!(listed, on_disk, "fuzz/regressions/README.md vs the files");
}

#[test]
fn every_target_has_seeds() {
    for t in fuzz::targets() {
        let seeds = files_in(&root().join("corpora").join(t.name));
        assert!(!seeds.is_empty(), "corpora/{}/ has no seeds", t.name);
    }
}

/// The targets Netstack3's crate (`stacks/netstack3`, a workspace member netconform cannot
/// depend on) registers at run time; stacks/netstack3/tests/fuzz.rs checks they are found.
const NETSTACK3_TARGETS: &[&str] = &["stack_netstack3", "stack_smoltcp_netstack3"];

/// `fuzz/fuzz_targets/<name>.rs` and a `[[bin]]` in `fuzz/Cargo.toml` for every target and
/// nothing else; each file only names its target (Netstack3's through its own crate, built
/// with the feature `netstack3`).
#[test]
fn the_fuzz_crate_has_one_file_per_target() {
    let mut names: BTreeSet<&str> = fuzz::targets().map(|t| t.name).collect();
    assert_eq!(
        names.len(),
        fuzz::targets().count(),
        "duplicate target names"
    );
    let files: BTreeSet<String> = files_in(&root().join("fuzz/fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    let files: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    for name in NETSTACK3_TARGETS {
        assert!(
            names.insert(name),
            "{name} is registered by netconform itself, not by Netstack3's crate"
        );
    }
    assert_eq!(
        files, names,
        "fuzz/fuzz_targets/ vs netconform::fuzz::targets()"
    );
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).expect("manifest");
    for name in &names {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
        let source = std::fs::read_to_string(root().join(format!("fuzz/fuzz_targets/{name}.rs")))
            .expect("target source");
        let (krate, feature) = if NETSTACK3_TARGETS.contains(name) {
            (
                "netconform_netstack3",
                "\nrequired-features = [\"netstack3\"]",
            )
        } else {
            ("netconform", "")
        };
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"{feature}"
            )),
            "fuzz/Cargo.toml's [[bin]] {name} lacks {feature:?}"
        );
        assert!(
            source.contains(&format!("{krate}::fuzz::run(\"{name}\", data)")),
            "fuzz/fuzz_targets/{name}.rs does not call {krate}::fuzz::run(\"{name}\", data)"
        );
    }
}
