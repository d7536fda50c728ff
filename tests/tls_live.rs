//! Live TLS: rustls client and server over veth between two namespaces.

use netconform::sandbox::HostPair;
use netconform::target::tls::{TestPki, TlsProvider, TlsScenario, run_rustls};

#[test]
fn smoke() {
    let pair = HostPair::build().unwrap();
    let pki = TestPki::generate().unwrap();
    for (version, suite) in [(0x0304, 0x1301), (0x0303, 0xc02b)] {
        let run = run_rustls(
            &pair,
            &pki,
            &TlsScenario {
                version,
                suite,
                provider: TlsProvider::AwsLcRs,
                key_update: true,
                client_private: [0x11; 32],
                server_private: [0x22; 32],
            },
        )
        .unwrap();
        eprintln!(
            "{:?} frames={} {:?} {:?}",
            run.negotiated,
            run.frames.len(),
            run.key_updates,
            run.client_keylog
                .iter()
                .map(|l| &l.label)
                .collect::<Vec<_>>()
        );
        assert!(run.frames.len() > 10);
    }
}

#[test]
fn openssl_smoke() {
    let pair = HostPair::build().unwrap();
    let pki = TestPki::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("ncf-ossl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for v in [0x0304u16, 0x0303] {
        let run = netconform::target::openssl::run_openssl(&pair, &pki, &dir, v, true).unwrap();
        eprintln!(
            "frames={} out={:?}",
            run.frames.len(),
            &run.client_output[..run.client_output.len().min(200)]
        );
        eprintln!("{}", std::fs::read_to_string(&run.client_keylog).unwrap());
    }
}
