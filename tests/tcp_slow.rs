//! The slow tier: timers a real kernel cannot shorten. CI does not run these (they are
//! `#[ignore]`d); run them with `ci/test-slow` or
//! `cargo test --test tcp_slow -- --ignored`.

#[macro_use]
mod common;

use netconform::dut::Tables;
use netconform::dut::linux::LinuxHost;
use netconform::dut::{StateAnswer, StateQuery, TcpState};
use netconform::engine::Session;
use netconform::models::tcp::State;
use netconform::models::tcp_timers::{TimerProfile, time_wait_ms};
use netconform::suites::tcp::matrix::path_to;
use netconform::suites::tcp::scenario::{ProfileName, TcpScenario, run_scenario};

/// TIME-WAIT lasts what the profile says (Linux: 60 s, RFC 9293: 2·MSL = 240 s): the
/// socket is polled through sock_diag until it disappears.
#[test]
#[ignore = "slow tier: TIME-WAIT lasts 60 s on Linux and cannot be shortened"]
fn time_wait_lasts_what_the_profile_says() {
    require_netns!();
    let config =
        netconform::dut::linux::lab_config_for(&netconform::engine::Needs::scenario(false));
    let mut target = LinuxHost::new(config).expect("lab");
    let scenario = TcpScenario {
        name: "to TIME-WAIT".into(),
        profile: ProfileName::Linux,
        ipv6: false,
        peer_mss: Some(1460),
        events: path_to(State::TimeWait),
    };
    let port = 6000;
    {
        let mut session = Session::new(&mut target);
        run_scenario(&mut session, &scenario, port).expect("reach TIME-WAIT");
    }
    let entered = std::time::Instant::now();
    let expected = time_wait_ms(&TimerProfile::linux());
    let limit = std::time::Duration::from_millis(expected + 10_000);
    loop {
        let StateAnswer::TcpSockets(sockets) =
            target.query(&StateQuery::TcpSockets).expect("sock_diag")
        else {
            panic!("not a socket list");
        };
        let in_time_wait = sockets
            .iter()
            .any(|s| s.local.port() == port && s.state == TcpState::TimeWait);
        if !in_time_wait {
            break;
        }
        assert!(
            entered.elapsed() < limit,
            "still in TIME-WAIT after {:?}",
            entered.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lasted = entered.elapsed().as_millis() as u64;
    // The kernel reaps TIME-WAIT sockets from a timer wheel whose granularity at 60 s is
    // 512 jiffies (2.048 s at HZ=250): up to that much late, never early.
    assert!(
        (expected.saturating_sub(200)..=expected + 3_000).contains(&lasted),
        "TIME-WAIT lasted {lasted} ms, expected {expected} ms"
    );
}
