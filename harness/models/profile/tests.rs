//! The one profile type: every model's RFC and Linux sets, sections and lines.

use super::*;
use crate::models::arp::ArpDeviation;
use crate::models::forward::ForwardDeviation;
use crate::models::nat::NatDeviation;
use crate::models::route::RouteDeviation;
use crate::models::switch::SwitchDeviation;
use crate::models::tcp::TcpDeviation;
use crate::models::tcp_timers::TimerDeviation;
use crate::models::tls::TlsDeviation;

/// What every model's deviations must satisfy: each names the RFC or IEEE section it
/// departs from and says in one line what the implementation does instead; the RFC
/// profile has none, the Linux profile exactly [`Deviation::LINUX`].
fn well_formed<D: Deviation>() {
    let mut seen = BTreeSet::new();
    for &d in D::ALL {
        assert!(seen.insert(d), "{d:?} listed twice in ALL");
        let section = d.section();
        assert!(
            section.starts_with("RFC ") || section.starts_with("IEEE "),
            "{d:?}: section {section:?}"
        );
        let instead = d.instead();
        assert!(
            !instead.is_empty() && !instead.contains('\n') && instead.len() <= 90,
            "{d:?}: {instead:?}"
        );
        assert_eq!(d.name(), format!("{d:?}"));
        let line = DeviationLine::of(d).to_string();
        assert_eq!(
            line,
            format!("{}: {d:?} ({section}): {instead}", D::MODEL),
            "{line}"
        );
    }
    assert!(D::LINUX.iter().all(|d| seen.contains(d)));
    let rfc = D::profile(ProfileName::Rfc);
    assert_eq!(rfc.name(), ProfileName::Rfc);
    assert!(rfc.is_empty() && rfc.lines().is_empty());
    assert_eq!(rfc, Profile::rfc());
    let linux = D::profile(ProfileName::Linux);
    assert_eq!(linux.name(), ProfileName::Linux);
    assert_eq!(linux, Profile::linux());
    let mut want: Vec<D> = D::LINUX.to_vec();
    want.sort();
    assert_eq!(linux.deviations().collect::<Vec<_>>(), want);
    assert!(
        D::ALL
            .iter()
            .all(|&d| linux.has(d) == D::LINUX.contains(&d))
    );
    assert!(D::ALL.iter().all(|&d| !rfc.has(d)));
    assert_eq!(linux.lines().len(), D::LINUX.len());
}

/// The Linux set of model `D`, checked against the list the model had before the one
/// profile type.
fn linux_is<D: Deviation>(before: &[D]) {
    well_formed::<D>();
    let linux: BTreeSet<D> = D::profile(ProfileName::Linux).deviations().collect();
    let before: BTreeSet<D> = before.iter().copied().collect();
    assert_eq!(linux, before, "{}", D::MODEL);
}

#[test]
fn tcp_linux_has_every_documented_deviation() {
    use TcpDeviation::*;
    linux_is(&[
        DropSynFinInListen,
        SynReceivedIsRequestSocket,
        RstAtRcvNxtMinusOneAfterFin,
        AbortRstCarriesAck,
        DiscardSynData,
        TimeWaitSynReopens,
        ImmediateDupAckWithSack,
        ResetInCloseWaitIsBrokenPipe,
        LinuxSequenceCheck,
        DropSegmentsWithoutAckRstSyn,
        OldAckBoundByBytesAcked,
        ResetOnDataAfterShutdown,
        OrphanedFinWait2IsMinisocket,
        TimeWaitMinisocket,
        SimultaneousOpenSynAckRepeatsSynOptions,
        SimultaneousOpenSynAckCompletes,
        FinQueuedUntilHandshakeCompletes,
        ShutdownInSynSentReportsReset,
    ]);
    assert_eq!(TcpDeviation::ALL.len(), 18);
}

#[test]
fn timer_linux_has_every_documented_deviation() {
    use TimerDeviation::*;
    linux_is(&[
        SynLinearTimeouts,
        KeepaliveDropSendsReset,
        TimeWaitSixtySeconds,
        RtoMinTwoHundredMs,
        UserTimeoutFromFirstRetransmission,
        ZeroWindowProbeHasNoData,
    ]);
}

#[test]
fn arp_linux_has_every_documented_deviation() {
    use ArpDeviation::*;
    linux_is(&[
        Locktime,
        NoEntryFromUnsolicitedReply,
        CachesNonUnicastHardwareAddress,
        AnswersSubnetBroadcastSender,
    ]);
}

#[test]
fn switch_linux_has_every_documented_deviation() {
    use SwitchDeviation::*;
    linux_is(&[
        InvalidSourceDropped,
        BridgeGroupAddressFloodedWithoutStp,
        MacControlAddressNotLearned,
    ]);
    assert!(
        SwitchDeviation::ALL
            .iter()
            .all(|d| d.section().starts_with("IEEE 802.1D"))
    );
}

#[test]
fn route_linux_has_every_documented_deviation() {
    use RouteDeviation::*;
    linux_is(&[
        Ipv6MetricZeroIsDefault,
        Ipv6ReportsSelectedSource,
        LocalTableFirst,
    ]);
}

#[test]
fn nat_linux_has_every_documented_deviation() {
    use NatDeviation::*;
    linux_is(&[EndpointDependentAfterClash, NoParityPreservation]);
    assert_eq!(EndpointDependentAfterClash.section(), "RFC 4787 §4.1 REQ-1");
    assert_eq!(NoParityPreservation.section(), "RFC 4787 §4.2.2 REQ-4");
}

#[test]
fn forward_linux_takes_the_error_source_from_the_route_back() {
    linux_is(&[ForwardDeviation::ErrorSourceFromRouteBack]);
    assert_eq!(
        ForwardDeviation::ErrorSourceFromRouteBack.section(),
        "RFC 1812 §4.3.2.4"
    );
}

#[test]
fn tls_has_no_deviation_and_still_a_profile() {
    linux_is::<TlsDeviation>(&[]);
    assert!(TlsDeviation::profile(ProfileName::Linux).is_empty());
}

#[test]
fn with_and_without_keep_the_name() {
    let p = Profile::<RouteDeviation>::rfc().with(RouteDeviation::LocalTableFirst);
    assert_eq!(p.name(), ProfileName::Rfc);
    assert!(p.has(RouteDeviation::LocalTableFirst));
    assert!(!p.has(RouteDeviation::Ipv6MetricZeroIsDefault));
    let q = p.without(RouteDeviation::LocalTableFirst);
    assert_eq!(q, Profile::rfc());
}

#[test]
fn a_profile_round_trips_through_json() {
    let p = Profile::<TcpDeviation>::linux();
    let json = serde_json::to_string(&p).expect("serialises");
    assert!(json.contains("\"Linux\"") && json.contains("DropSynFinInListen"));
    let back: Profile<TcpDeviation> = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, p);
}
