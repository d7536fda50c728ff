//! The model fuzz targets (`netconform::fuzz`, kind `Model`): every one is registered, and
//! a few hundred pseudo-random inputs (a fixed-seed xorshift, no random source) pass each of
//! them. That the invariant checks themselves can fail is shown by the unit tests next to
//! them (`harness/fuzz/models/tests.rs`), which build bad states the checks must reject.

use netconform::fuzz::{self, Kind};

const MODELS: [&str; 7] = [
    "model_tcp",
    "model_arp",
    "model_route",
    "model_switch",
    "model_forward",
    "model_nat",
    "model_tls",
];

/// xorshift64 (Marsaglia), seeded.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn every_model_has_a_target() {
    for name in MODELS {
        let t = fuzz::target(name).unwrap_or_else(|| panic!("no target {name}"));
        assert_eq!(t.kind, Kind::Model, "{name}");
    }
    let models: Vec<&str> = fuzz::targets()
        .filter(|t| t.kind == Kind::Model)
        .map(|t| t.name)
        .collect();
    assert_eq!(models, MODELS);
}

#[test]
fn pseudo_random_inputs_pass_every_model_target() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for name in MODELS {
        let t = fuzz::target(name).expect("target");
        for i in 0..300 {
            let len = (rng.next() % 512) as usize;
            let data = rng.bytes(len);
            if let Err(finding) = (t.run)(&data) {
                panic!("input {i} ({}): {finding}", hex(&data));
            }
        }
    }
}

#[test]
fn empty_and_tiny_inputs_pass() {
    for name in MODELS {
        let t = fuzz::target(name).expect("target");
        for data in [&[][..], &[0], &[0xff; 3], &[1, 2, 3, 4, 5, 6, 7, 8]] {
            assert!((t.run)(data).is_ok(), "{name} on {data:?}");
        }
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
