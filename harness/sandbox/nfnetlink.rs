//! A small synchronous nfnetlink client (`NETLINK_NETFILTER`) for one namespace: the
//! nftables masquerade ruleset installed as one transaction, tables and rules listed, and the
//! connection tracking table dumped (ctnetlink) and flushed. No `nft`, no `conntrack`.
//!
//! The messages are `netlink-packet-netfilter`'s (MIT, the rust-netlink family that also
//! gives the harness `netlink-packet-core` and `netlink-packet-route`); the socket is
//! `netlink-sys`'s. This module adds what that crate leaves to its caller: the nf_tables
//! batch, the ACK bookkeeping, and the translation of kernel attributes into the harness's
//! typed [`ConntrackEntry`].
//!
//! Open it with `ns.run(|| Nfnl::open(name))` (a netlink socket belongs to the namespace of
//! the thread that creates it), as [`super::nat`] does.
//!
//! Numbers that the crate does not name are cited from the kernel's uapi headers next to
//! their constants: `linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h`,
//! `linux/netfilter/nfnetlink_conntrack.h`, `linux/netfilter/nf_conntrack_common.h` and
//! `linux/netfilter/nf_conntrack_tcp.h`.
//!
//! ## The transaction
//!
//! nf_tables changes go in one datagram framed by `NFNL_MSG_BATCH_BEGIN` and
//! `NFNL_MSG_BATCH_END` (whose `res_id` names the subsystem, `NFNL_SUBSYS_NFTABLES`). The
//! kernel applies all of it or nothing. Every change carries `NLM_F_ACK`, so each gets
//! exactly one answer, an ACK or its errno, delivered once the whole batch is processed; a
//! failing commit is reported against the batch-begin message. The transaction succeeded
//! when every change was ACKed and nothing failed.

use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer,
    NetlinkMessage, NetlinkPayload, Nla,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo, ProtoInfoTCP, ProtoTuple, Tuple,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook,
    InetHookNumber, ListAttribute, Meta, MetaKey, NfTablesMessage, Operator, Register,
    RuleAttribute, RuleMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::SandboxError;
use super::nat::{ConntrackEntry, ConntrackTuple};

/// `NFNL_SUBSYS_NFTABLES` (`nfnetlink.h`): the subsystem a batch is addressed to.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `IFNAMSIZ` (`linux/if.h`): `meta oifname` loads the name NUL-padded to this length.
const IFNAMSIZ: usize = 16;
/// `NF_ACCEPT` (`linux/netfilter.h`): a chain policy.
const NF_ACCEPT: u32 = 1;
/// `NF_IP_PRI_NAT_SRC` (`linux/netfilter_ipv4.h`): what `nft` calls priority `srcnat`.
const PRIORITY_SRCNAT: i32 = 100;
/// `CTA_PROTO_ICMP_ID`, `CTA_PROTO_ICMPV6_ID` (`nfnetlink_conntrack.h`, `enum
/// ctattr_l4proto`): the identifier of an ICMP tuple, which stands in for both ports.
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
/// `IPS_*_BIT` (`nf_conntrack_common.h`): the status bits the table's text shows.
const IPS_SEEN_REPLY: u32 = 1 << 1;
const IPS_ASSURED: u32 = 1 << 2;
const IPS_OFFLOAD: u32 = 1 << 14;
const IPS_HW_OFFLOAD: u32 = 1 << 15;
/// `enum tcp_conntrack` (`nf_conntrack_tcp.h`), named as `/proc/net/nf_conntrack` and
/// `conntrack -L` print them (`tcp_conntrack_names` in `nf_conntrack_proto_tcp.c`).
const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];
/// How long an answer may take before the request is called failed (the kernel answers
/// at once; this only turns a misunderstanding into an error instead of a hang).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One nftables table, as `NFT_MSG_GETTABLE` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    /// The `NFPROTO_*` family (2 `ip`, 10 `ip6`, 1 `inet`...).
    pub family: u8,
    /// The table's name.
    pub name: String,
}

/// One nftables rule, as `NFT_MSG_GETRULE` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRule {
    /// The chain it is in.
    pub chain: String,
    /// The rule in `nft` syntax as far as this module knows the expressions
    /// (`oifname "ncf3r1" masquerade`); an unknown expression appears as its kernel name.
    pub text: String,
}

/// One change of an nf_tables transaction: what it is called in errors, and the message.
pub(super) struct Change {
    /// The operation, for an error (`NFT_MSG_NEWRULE ip ncf_nat postrouting`).
    pub what: String,
    /// The message.
    pub message: NfTablesMessage,
    /// Flags besides `NLM_F_REQUEST | NLM_F_ACK` (`NLM_F_CREATE`...).
    pub flags: u16,
}

/// The three changes that install `table ip <table> { chain postrouting { type nat hook
/// postrouting priority srcnat; policy accept; oifname "<oifname>" masquerade } }`.
pub(super) fn masquerade_changes(table: &str, oifname: &str) -> Result<Vec<Change>, SandboxError> {
    // The name must fit IFNAMSIZ with its terminating NUL, like every interface name.
    if oifname.is_empty() || oifname.len() >= IFNAMSIZ || oifname.contains('\0') {
        return Err(SandboxError::InvalidName {
            name: oifname.to_string(),
            reason: "an interface name is 1 to 15 bytes without NUL",
        });
    }
    let mut padded = oifname.as_bytes().to_vec();
    padded.resize(IFNAMSIZ, 0);
    let chain = "postrouting";
    Ok(vec![
        Change {
            what: format!("NFT_MSG_NEWTABLE ip {table}"),
            message: NfTablesMessage::NewTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.to_string())],
            }),
            flags: NLM_F_CREATE,
        },
        Change {
            what: format!("NFT_MSG_NEWCHAIN ip {table} {chain}"),
            message: NfTablesMessage::NewChain(ChainMessage {
                attributes: vec![
                    ChainAttribute::Table(table.to_string()),
                    ChainAttribute::Name(chain.to_string()),
                    ChainAttribute::Hook(vec![
                        Hook::Number(InetHookNumber::PostRouting.into()),
                        // NFTA_HOOK_PRIORITY is a signed 32-bit number sent as its bits.
                        Hook::Priority(PRIORITY_SRCNAT as u32),
                    ]),
                    ChainAttribute::Policy(NF_ACCEPT),
                    ChainAttribute::Type("nat".to_string()),
                ],
            }),
            flags: NLM_F_CREATE,
        },
        Change {
            what: format!("NFT_MSG_NEWRULE ip {table} {chain} oifname \"{oifname}\" masquerade"),
            message: NfTablesMessage::NewRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table(table.to_string()),
                    RuleAttribute::Chain(chain.to_string()),
                    RuleAttribute::Expressions(vec![
                        Expressions::Meta(vec![
                            Meta::Key(MetaKey::Oifname),
                            Meta::DestinationRegister(Register::Reg1),
                        ])
                        .into(),
                        Expressions::Cmp(vec![
                            Cmp::SourceRegister(Register::Reg1),
                            Cmp::Op(Operator::Equal),
                            Cmp::Data(DataAttribute::Value(padded)),
                        ])
                        .into(),
                        // `masq` without attributes: masquerade with the default port range.
                        ListAttribute::Element(vec![ExpressionAttribute::Name("masq".into())]),
                    ]),
                ],
            }),
            flags: NLM_F_CREATE | NLM_F_APPEND,
        },
    ])
}

/// The rule in `nft` syntax as far as the expressions are known: `meta oifname` into a
/// register compared for equality reads `oifname "<name>"`, `masq` reads `masquerade`,
/// anything else its kernel name.
pub(super) fn rule_text(expressions: &[ListAttribute<ExpressionAttribute>]) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut oifname_loaded = false;
    for element in expressions {
        let ListAttribute::Element(attributes) = element else {
            continue;
        };
        let name = attributes.iter().find_map(|a| match a {
            ExpressionAttribute::Name(n) => Some(n.as_str()),
            _ => None,
        });
        let data = attributes.iter().find_map(|a| match a {
            ExpressionAttribute::Data(d) => Some(d),
            _ => None,
        });
        match (name, data) {
            (Some("meta"), Some(Expressions::Meta(m)))
                if m.contains(&Meta::Key(MetaKey::Oifname)) =>
            {
                oifname_loaded = true;
                continue;
            }
            (Some("cmp"), Some(Expressions::Cmp(c)))
                if oifname_loaded && c.contains(&Cmp::Op(Operator::Equal)) =>
            {
                let value = c.iter().find_map(|a| match a {
                    Cmp::Data(DataAttribute::Value(v)) => Some(v),
                    _ => None,
                });
                if let Some(v) = value {
                    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
                    words.push(format!(
                        "oifname \"{}\"",
                        String::from_utf8_lossy(&v[..end])
                    ));
                } else {
                    words.push("cmp".into());
                }
            }
            (Some("masq"), _) => words.push("masquerade".into()),
            (Some(other), _) => words.push(other.to_string()),
            (None, _) => words.push("(unnamed expression)".into()),
        }
        oifname_loaded = false;
    }
    words.join(" ")
}

/// The typed entry for the attributes of one ctnetlink message, as `/proc/net/nf_conntrack`
/// would print it: protocol, timeout, the TCP state, both tuples (an ICMP identifier stands
/// for both ports; protocols without ports get zeros), and the bracketed flags (`UNREPLIED`
/// without `IPS_SEEN_REPLY`, then `HW_OFFLOAD`, `OFFLOAD` or `ASSURED`, in the kernel's
/// order).
pub(super) fn conntrack_entry(attributes: &[ConntrackAttribute]) -> Result<ConntrackEntry, String> {
    let mut original = None;
    let mut reply = None;
    let mut status = 0u32;
    let mut timeout_s = 0u32;
    let mut tcp_state = None;
    for a in attributes {
        match a {
            ConntrackAttribute::CtaTupleOrig(t) => original = Some(tuple(t, "CTA_TUPLE_ORIG")?),
            ConntrackAttribute::CtaTupleReply(t) => reply = Some(tuple(t, "CTA_TUPLE_REPLY")?),
            ConntrackAttribute::CtaStatus(s) => status = s.bits(),
            ConntrackAttribute::CtaTimeout(t) => timeout_s = *t,
            ConntrackAttribute::CtaProtoInfo(infos) => {
                for info in infos {
                    if let ProtoInfo::TCP(tcp) = info {
                        for t in tcp {
                            if let ProtoInfoTCP::State(s) = t {
                                tcp_state = Some(*s);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let (Some((protocol, original)), Some((_, reply))) = (original, reply) else {
        return Err("an entry without CTA_TUPLE_ORIG or CTA_TUPLE_REPLY".into());
    };
    let state = match (protocol, tcp_state) {
        (6, Some(s)) => Some(
            TCP_STATES
                .get(usize::from(s))
                .map_or_else(|| format!("state {s}"), |n| n.to_string()),
        ),
        _ => None,
    };
    let mut flags = Vec::new();
    if status & IPS_SEEN_REPLY == 0 {
        flags.push("UNREPLIED".to_string());
    }
    if status & IPS_HW_OFFLOAD != 0 {
        flags.push("HW_OFFLOAD".to_string());
    } else if status & IPS_OFFLOAD != 0 {
        flags.push("OFFLOAD".to_string());
    } else if status & IPS_ASSURED != 0 {
        flags.push("ASSURED".to_string());
    }
    Ok(ConntrackEntry {
        protocol,
        timeout_s,
        state,
        original,
        reply,
        flags,
    })
}

/// One direction: (protocol number, tuple).
fn tuple(parts: &[Tuple], which: &str) -> Result<(u8, ConntrackTuple), String> {
    let (mut src, mut dst, mut protocol) = (None::<IpAddr>, None::<IpAddr>, None::<u8>);
    let (mut sport, mut dport, mut id) = (None::<u16>, None::<u16>, None::<u16>);
    for part in parts {
        match part {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(protos) => {
                for p in protos {
                    match p {
                        ProtoTuple::Protocol(n) => protocol = Some(u8::from(*n)),
                        ProtoTuple::SourcePort(port) => sport = Some(*port),
                        ProtoTuple::DestinationPort(port) => dport = Some(*port),
                        ProtoTuple::Other(nla)
                            if matches!(nla.kind(), CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID) =>
                        {
                            let mut v = vec![0u8; nla.value_len()];
                            nla.emit_value(&mut v);
                            let bytes: [u8; 2] = v
                                .as_slice()
                                .try_into()
                                .map_err(|_| format!("{which}: an ICMP id of {} bytes", v.len()))?;
                            id = Some(u16::from_be_bytes(bytes));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(src), Some(dst), Some(protocol)) = (src, dst, protocol) else {
        return Err(format!("{which} lacks an address or the protocol number"));
    };
    let (sport, dport) = match (sport, dport, id) {
        (Some(s), Some(d), _) => (s, d),
        (_, _, Some(id)) => (id, id),
        _ => (0, 0),
    };
    Ok((
        protocol,
        ConntrackTuple {
            src,
            dst,
            sport,
            dport,
        },
    ))
}

/// Splits one received datagram into messages. A length field that points outside the
/// datagram, or a message the crate cannot decode, is an error (never a panic).
pub(super) fn decode_datagram(
    bytes: &[u8],
) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < bytes.len() {
        let rest = &bytes[off..];
        let checked =
            NetlinkBuffer::new_checked(rest).map_err(|e| format!("at byte {off}: {e}"))?;
        let len = checked.length() as usize;
        let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&rest[..len])
            .map_err(|e| format!("at byte {off}: {e}"))?;
        out.push(msg);
        // Messages are padded to 4 bytes (NLMSG_ALIGN); the last one may end the datagram.
        off = off.saturating_add((len + 3) & !3);
    }
    Ok(out)
}

/// The answer to one sent message, by its position in what was sent.
enum Answer {
    Ack,
    Errno(nix::errno::Errno),
    Message(NetfilterMessage),
    Done,
}

/// A `NETLINK_NETFILTER` socket opened in one namespace.
pub(super) struct Nfnl {
    namespace: String,
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Nfnl {
    /// Opens a `NETLINK_NETFILTER` socket in the **calling thread's** namespace; `namespace`
    /// is the name used in errors. Call it through [`super::Namespace::run`].
    pub(super) fn open(namespace: &str) -> Result<Nfnl, SandboxError> {
        let io = |op: &str, e: &dyn std::fmt::Display| SandboxError::NetlinkIo {
            namespace: namespace.to_string(),
            op: format!("nfnetlink {op}"),
            detail: e.to_string(),
        };
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| io("socket", &e))?;
        socket.bind_auto().map_err(|e| io("bind", &e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| io("connect", &e))?;
        let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT.as_secs() as _, 0);
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
            .map_err(|e| io("SO_RCVTIMEO", &e))?;
        Ok(Nfnl {
            namespace: namespace.to_string(),
            socket,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    fn io_err(&self, op: &str, detail: impl ToString) -> SandboxError {
        SandboxError::NetlinkIo {
            namespace: self.namespace.clone(),
            op: op.to_string(),
            detail: detail.to_string(),
        }
    }

    fn errno(&self, op: &str, errno: nix::errno::Errno) -> SandboxError {
        SandboxError::Netlink {
            namespace: self.namespace.clone(),
            op: op.to_string(),
            errno,
        }
    }

    /// Sends `msgs` in one datagram with consecutive sequence numbers; returns the first.
    fn send(&mut self, op: &str, msgs: Vec<(NetfilterMessage, u16)>) -> Result<u32, SandboxError> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for (msg, flags) in msgs {
            self.seq = self.seq.wrapping_add(1);
            super::netlink::append_message(&mut out, self.seq, NLM_F_REQUEST | flags, msg);
        }
        self.socket
            .send(&out, 0)
            .map_err(|e| self.io_err(op, format!("send: {e}")))?;
        Ok(first)
    }

    /// Receives one datagram: every message in it, as (sequence number, answer).
    fn receive(&mut self, op: &str) -> Result<Vec<(u32, Answer)>, SandboxError> {
        let n = self
            .socket
            .recv(&mut &mut self.buf[..], 0)
            .map_err(|e| self.io_err(op, format!("recv: {e}")))?;
        let msgs = decode_datagram(&self.buf[..n.min(self.buf.len())])
            .map_err(|e| self.io_err(op, format!("decode: {e}")))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let answer = match m.payload {
                    NetlinkPayload::Done(_) => Answer::Done,
                    NetlinkPayload::Error(e) => match e.code {
                        None => Answer::Ack,
                        Some(code) => Answer::Errno(nix::errno::Errno::from_raw(-code.get())),
                    },
                    NetlinkPayload::InnerMessage(m) => Answer::Message(m),
                    _ => return None,
                };
                Some((m.header.sequence_number, answer))
            })
            .collect())
    }

    /// Applies `changes` as one nf_tables transaction (see the module docs). An errno names
    /// the change the kernel refused (or the commit).
    pub(super) fn transaction(&mut self, changes: Vec<Change>) -> Result<(), SandboxError> {
        let op = "nf_tables batch";
        let control = |m: ControlMessage| {
            NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
                m,
            )
        };
        let names: Vec<String> = changes.iter().map(|c| c.what.clone()).collect();
        let mut msgs = vec![(control(ControlMessage::BatchBegin), 0)];
        for c in changes {
            let header = NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0);
            msgs.push((
                NetfilterMessage::new(header, c.message),
                c.flags | NLM_F_ACK,
            ));
        }
        msgs.push((control(ControlMessage::BatchEnd), 0));
        let begin = self.send(op, msgs)?;
        let n = names.len();
        let mut answered = vec![false; n];
        let mut failure: Option<SandboxError> = None;
        while answered.iter().any(|a| !a) {
            for (seq, answer) in self.receive(op)? {
                let i = seq.wrapping_sub(begin) as usize;
                let what = match i {
                    0 => format!("{op} (commit)"),
                    i if i <= n => format!("{op}: {}", names[i - 1]),
                    _ => continue,
                };
                if let Answer::Errno(errno) = answer {
                    let e = self.errno(&what, errno);
                    if i == 0 {
                        // The batch as a whole failed (the commit, or its framing): report
                        // the first refused change if there was one, else this.
                        return Err(failure.unwrap_or(e));
                    }
                    failure.get_or_insert(e);
                }
                if (1..=n).contains(&i) {
                    answered[i - 1] = true;
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Sends `msg` as a dump request and collects every answer up to `NLMSG_DONE`.
    fn dump(
        &mut self,
        op: &str,
        msg: NetfilterMessage,
    ) -> Result<Vec<NetfilterMessage>, SandboxError> {
        let seq = self.send(op, vec![(msg, NLM_F_DUMP)])?;
        let mut out = Vec::new();
        loop {
            for (s, answer) in self.receive(op)? {
                if s != seq {
                    continue;
                }
                match answer {
                    Answer::Message(m) => out.push(m),
                    Answer::Done | Answer::Ack => return Ok(out),
                    Answer::Errno(errno) => return Err(self.errno(op, errno)),
                }
            }
        }
    }

    /// Every nftables table of the namespace, all families.
    pub(super) fn tables(&mut self) -> Result<Vec<NftTable>, SandboxError> {
        let request = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
            NfTablesMessage::GetTable(TableMessage { attributes: vec![] }),
        );
        let answers = self.dump("NFT_MSG_GETTABLE (dump)", request)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m.inner {
                NetfilterMessageInner::NfTables(NfTablesMessage::NewTable(t)) => {
                    t.attributes.into_iter().find_map(|a| match a {
                        TableAttribute::Name(name) => Some(NftTable {
                            family: m.header.family.into(),
                            name,
                        }),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// The rules of table `table` of family `ip`, in order.
    pub(super) fn rules(&mut self, table: &str) -> Result<Vec<NftRule>, SandboxError> {
        let request = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
            NfTablesMessage::GetRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(table.to_string())],
            }),
        );
        let answers = self.dump(&format!("NFT_MSG_GETRULE ip {table} (dump)"), request)?;
        let mut out = Vec::new();
        for m in answers {
            let NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(r)) = m.inner else {
                continue;
            };
            let mut chain = String::new();
            let mut text = String::new();
            for a in &r.attributes {
                match a {
                    RuleAttribute::Chain(c) => chain = c.clone(),
                    RuleAttribute::Expressions(e) => text = rule_text(e),
                    _ => {}
                }
            }
            out.push(NftRule { chain, text });
        }
        Ok(out)
    }

    /// The connection tracking table (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`). The family is
    /// `AF_UNSPEC`, which the kernel reads as "every family" (as `/proc/net/nf_conntrack`
    /// lists IPv4 and IPv6 alike).
    pub(super) fn conntrack(&mut self) -> Result<Vec<ConntrackEntry>, SandboxError> {
        let op = "IPCTNL_MSG_CT_GET (dump)";
        let request = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
            ConntrackMessage::Get(vec![]),
        );
        let mut out = Vec::new();
        for m in self.dump(op, request)? {
            if let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attributes)) = m.inner {
                out.push(conntrack_entry(&attributes).map_err(|e| self.io_err(op, e))?);
            }
        }
        Ok(out)
    }

    /// Empties the connection tracking table: `IPCTNL_MSG_CT_DELETE` without a tuple is a
    /// flush, `AF_UNSPEC` every family, of this namespace only.
    pub(super) fn flush_conntrack(&mut self) -> Result<(), SandboxError> {
        let op = "IPCTNL_MSG_CT_DELETE (flush)";
        let request = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
            ConntrackMessage::Delete(vec![]),
        );
        let seq = self.send(op, vec![(request, NLM_F_ACK)])?;
        loop {
            for (s, answer) in self.receive(op)? {
                if s != seq {
                    continue;
                }
                match answer {
                    Answer::Errno(errno) => return Err(self.errno(op, errno)),
                    Answer::Ack | Answer::Done => return Ok(()),
                    Answer::Message(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{
        Emitable, NetlinkDeserializable as _, NetlinkHeader, NetlinkSerializable,
    };

    /// One attribute: length, type, value, padded to 4 bytes (`struct nlattr`).
    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize((len + 3) & !3, 0);
        v
    }

    /// A nested attribute, `NLA_F_NESTED` set as the kernel's `nla_nest_start` does.
    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &parts.concat())
    }

    /// A netlink message: header, `struct nfgenmsg`, attributes.
    fn message(kind: u16, flags: u16, seq: u32, family: u8, attributes: &[Vec<u8>]) -> Vec<u8> {
        let body = attributes.concat();
        let len = 16 + 4 + body.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&[family, 0, 0, 0]);
        v.extend_from_slice(&body);
        v
    }

    // nfnetlink_conntrack.h: CTA_TUPLE_ORIG 1, CTA_TUPLE_REPLY 2, CTA_STATUS 3,
    // CTA_PROTOINFO 4, CTA_TIMEOUT 7; CTA_TUPLE_IP 1, CTA_TUPLE_PROTO 2; CTA_IP_V4_SRC 1,
    // CTA_IP_V4_DST 2; CTA_PROTO_NUM 1, CTA_PROTO_SRC_PORT 2, CTA_PROTO_DST_PORT 3;
    // CTA_PROTOINFO_TCP 1, CTA_PROTOINFO_TCP_STATE 1. IPCTNL_MSG_CT_NEW is 0 in subsystem
    // NFNL_SUBSYS_CTNETLINK (1), so the message type is 0x0100.
    fn v4_tuple(kind: u16, src: [u8; 4], dst: [u8; 4], proto: u8, ports: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![nla(1, &[proto])];
        p.extend_from_slice(ports);
        nested(
            kind,
            &[nested(1, &[nla(1, &src), nla(2, &dst)]), nested(2, &p)],
        )
    }

    fn tcp_entry_bytes() -> Vec<u8> {
        let ports = |s: u16, d: u16| vec![nla(2, &s.to_be_bytes()), nla(3, &d.to_be_bytes())];
        message(
            0x0100,
            0x2, // NLM_F_MULTI
            7,
            2,
            &[
                v4_tuple(1, [10, 78, 1, 11], [10, 78, 2, 2], 6, &ports(40000, 80)),
                v4_tuple(2, [10, 78, 2, 2], [10, 78, 2, 1], 6, &ports(80, 40000)),
                nla(3, &(1u32 << 3).to_be_bytes()), // IPS_CONFIRMED only: not replied
                nla(7, &118u32.to_be_bytes()),
                nested(4, &[nested(1, &[nla(1, &[1])])]), // TCP state 1, SYN_SENT
            ],
        )
    }

    fn icmp_entry_bytes() -> Vec<u8> {
        // CTA_PROTO_ICMP_ID 4, CTA_PROTO_ICMP_TYPE 5, CTA_PROTO_ICMP_CODE 6.
        let icmp = |t: u8| vec![nla(4, &4660u16.to_be_bytes()), nla(5, &[t]), nla(6, &[0])];
        message(
            0x0100,
            0x2,
            7,
            2,
            &[
                v4_tuple(1, [10, 78, 1, 10], [10, 78, 2, 2], 1, &icmp(8)),
                v4_tuple(2, [10, 78, 2, 2], [10, 78, 2, 1], 1, &icmp(0)),
                // IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED
                nla(3, &0b1110u32.to_be_bytes()),
                nla(7, &29u32.to_be_bytes()),
            ],
        )
    }

    fn entries_of(bytes: &[u8]) -> Vec<ConntrackEntry> {
        decode_datagram(bytes)
            .expect("decodes")
            .into_iter()
            .filter_map(|m| match m.payload {
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(a)),
                    ..
                }) => Some(conntrack_entry(&a).expect("an entry")),
                _ => None,
            })
            .collect()
    }

    /// Kernel-layout bytes (built by hand from the uapi numbers, not by the crate) decode
    /// into the entries `/proc/net/nf_conntrack` shows for the same connections.
    #[test]
    fn ctnetlink_entries_decode_as_proc_prints_them() {
        let mut datagram = tcp_entry_bytes();
        datagram.extend_from_slice(&icmp_entry_bytes());
        let got = entries_of(&datagram);
        let want = super::super::nat::parse_conntrack(
            "ipv4 2 tcp 6 118 SYN_SENT src=10.78.1.11 dst=10.78.2.2 sport=40000 dport=80 [UNREPLIED] src=10.78.2.2 dst=10.78.2.1 sport=80 dport=40000 mark=0 use=1\n\
             ipv4 2 icmp 1 29 src=10.78.1.10 dst=10.78.2.2 type=8 code=0 id=4660 src=10.78.2.2 dst=10.78.2.1 type=0 code=0 id=4660 [ASSURED] mark=0 use=1\n",
        )
        .expect("parses");
        assert_eq!(got, want);
        assert_eq!(
            got[0].to_string(),
            "tcp 10.78.1.11:40000 > 10.78.2.2:80 | reply 10.78.2.2:80 > 10.78.2.1:40000 SYN_SENT [UNREPLIED]"
        );
    }

    /// Every truncation of a valid answer, and every single-byte corruption of it, decodes
    /// or is an error: never a panic.
    #[test]
    fn truncated_or_corrupt_answers_are_errors_not_panics() {
        let good = tcp_entry_bytes();
        for cut in 0..good.len() {
            let r = decode_datagram(&good[..cut]);
            if cut > 0 {
                assert!(
                    r.is_err(),
                    "a datagram cut at {cut} of {} decoded",
                    good.len()
                );
            }
        }
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                if let Ok(msgs) = decode_datagram(&bad) {
                    for m in msgs {
                        if let NetlinkPayload::InnerMessage(NetfilterMessage {
                            inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(a)),
                            ..
                        }) = m.payload
                        {
                            let _ = conntrack_entry(&a);
                        }
                    }
                }
            }
        }
        // An entry without its reply tuple is an error with a reason.
        let no_reply = message(
            0x0100,
            2,
            1,
            2,
            &[v4_tuple(1, [1, 1, 1, 1], [2, 2, 2, 2], 17, &[])],
        );
        let msgs = decode_datagram(&no_reply).expect("well-formed netlink");
        let NetlinkPayload::InnerMessage(NetfilterMessage {
            inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(a)),
            ..
        }) = &msgs[0].payload
        else {
            panic!("{:?}", msgs[0]);
        };
        assert!(conntrack_entry(a).unwrap_err().contains("CTA_TUPLE_REPLY"));
    }

    /// The status bits give the bracketed flags as the kernel's text does.
    #[test]
    fn status_bits_give_the_flags() {
        let flags = |status: u32| {
            let t = Tuple::Proto(vec![ProtoTuple::Protocol(17.into())]);
            let ip = Tuple::Ip(vec![
                IPTuple::SourceAddress([1, 1, 1, 1].into()),
                IPTuple::DestinationAddress([2, 2, 2, 2].into()),
            ]);
            conntrack_entry(&[
                ConntrackAttribute::CtaTupleOrig(vec![ip.clone(), t.clone()]),
                ConntrackAttribute::CtaTupleReply(vec![ip, t]),
                ConntrackAttribute::CtaStatus(
                    netlink_packet_netfilter::conntrack::Status::from_bits_retain(status),
                ),
            ])
            .expect("an entry")
            .flags
        };
        assert_eq!(flags(0), ["UNREPLIED"]);
        assert_eq!(flags(IPS_SEEN_REPLY), Vec::<String>::new());
        assert_eq!(flags(IPS_SEEN_REPLY | IPS_ASSURED), ["ASSURED"]);
        assert_eq!(
            flags(IPS_SEEN_REPLY | IPS_ASSURED | IPS_OFFLOAD),
            ["OFFLOAD"]
        );
    }

    /// The masquerade rule's bytes: `meta` loads `NFT_META_OIFNAME` (7) into register 1,
    /// `cmp` compares with `NFT_CMP_EQ` (0) against the name NUL-padded to 16 bytes, then
    /// `masq`; and the same messages read back as `oifname "ncf3r1" masquerade`.
    #[test]
    fn the_masquerade_rule_encodes_and_reads_back() {
        let changes = masquerade_changes("ncf_nat", "ncf3r1").expect("valid name");
        assert_eq!(changes.len(), 3);
        let NfTablesMessage::NewRule(rule) = &changes[2].message else {
            panic!("the third change is the rule");
        };
        let Some(RuleAttribute::Expressions(e)) = rule.attributes.get(2) else {
            panic!("{rule:?}");
        };
        assert_eq!(rule_text(e), "oifname \"ncf3r1\" masquerade");
        // Through the wire format and back.
        let msg = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
            changes[2].message.clone(),
        );
        let mut bytes = vec![0u8; Emitable::buffer_len(&msg)];
        msg.emit(&mut bytes);
        let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(find(&nla(2, &7u32.to_be_bytes())), "NFTA_META_KEY oifname");
        assert!(find(&nla(1, b"masq\0")), "NFTA_EXPR_NAME masq");
        assert!(
            find(&nla(3 | 0x8000, &nla(1, b"ncf3r1\0\0\0\0\0\0\0\0\0\0"))),
            "NFTA_CMP_DATA"
        );
        let mut header = NetlinkHeader::default();
        header.message_type = NetlinkSerializable::message_type(&msg);
        header.length = (16 + bytes.len()) as u32;
        let back = NetfilterMessage::deserialize(&header, &bytes).expect("decodes");
        let NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(r)) = back.inner else {
            panic!("{back:?}");
        };
        let Some(RuleAttribute::Expressions(e)) = r.attributes.get(2) else {
            panic!("{r:?}");
        };
        assert_eq!(rule_text(e), "oifname \"ncf3r1\" masquerade");
        // The message type is NFT_MSG_NEWRULE (6) of NFNL_SUBSYS_NFTABLES (10).
        assert_eq!(NetlinkSerializable::message_type(&msg), 0x0a06);
        for bad in ["", "sixteen-bytes-xx", "a\0b"] {
            assert!(masquerade_changes("ncf_nat", bad).is_err(), "{bad:?}");
        }
    }

    /// A transaction the kernel refuses (a rule for a chain the batch never creates) is
    /// an error naming the refused message and the errno, and nothing of it stays: the
    /// table created earlier in the same batch is gone too.
    #[test]
    fn a_refused_transaction_names_the_message_and_leaves_nothing() {
        if !crate::sandbox::require_netns("a_refused_transaction_names_the_message") {
            return;
        }
        let ns = crate::sandbox::Namespace::create("nfnl").expect("namespace");
        let mut changes = masquerade_changes("ncf_refused", "eth0").expect("valid name");
        changes.remove(1); // no chain
        let name = ns.name().to_string();
        let result = ns
            .run(move || Nfnl::open(&name)?.transaction(changes))
            .expect("worker");
        let Err(SandboxError::Netlink { op, errno, .. }) = &result else {
            panic!("{result:?}");
        };
        assert!(
            op.contains("NFT_MSG_NEWRULE ip ncf_refused postrouting"),
            "{op}"
        );
        assert_eq!(*errno, nix::errno::Errno::ENOENT);
        let name = ns.name().to_string();
        let tables = ns
            .run(move || Nfnl::open(&name)?.tables())
            .expect("worker")
            .expect("tables");
        assert!(tables.is_empty(), "{tables:?}");
    }
}
