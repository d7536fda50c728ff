//! The agent protocol, `netconform-agent/1.2`: how the external target
//! ([`super::external::ExternalStack`]) makes socket calls inside a stack it cannot link.
//!
//! An **agent** is a small program started by the harness inside the stack's network
//! namespace. It reads one JSON request per line on stdin and writes one JSON reply per line
//! on stdout, in order, each reply carrying its request's `id`. The first request is a
//! `hello` naming the protocol and its major version; the agent answers with its own name,
//! version and environment, or refuses. Socket calls, state queries and controls carry the
//! harness's own [`SocketCall`], [`StateQuery`] and [`Control`] values in their serde JSON
//! form; the replies carry [`CallOutcome`] and [`StateAnswer`]. What the agent cannot do is
//! `unsupported` (the check's verdict is UNSUPPORTED, never FAIL); what went wrong is
//! `error`. `docs/agent-protocol.md` is the full description, with an example of every
//! message.
//!
//! Writing an agent in Rust takes an [`AgentStack`] (call, and optionally query and control)
//! and [`serve_stdio`]; [`AgentEnv::from_env`] reads what the harness tells the agent about
//! its interface. `agents/linux.rs` is the reference agent.
//!
//! Minor 1 ([`UDP_MINOR`]) added the UDP socket calls ([`SocketCall::UdpBind`],
//! [`SocketCall::SendTo`], [`SocketCall::RecvFrom`]) and their outcome
//! ([`CallOutcome::Datagram`]); nothing else changed shape. The harness sends them only to
//! an agent whose hello says minor 1 or later, and answers them itself `unsupported` for an
//! older one. Minor 2 ([`ROUTE_SOURCE_MINOR`]) added the route lookup with a source address
//! ([`StateQuery::RouteGetFrom`], answered like `RouteGet`); the harness sends it only to an
//! agent of minor 2 or later, in the same way. [`serve`] answers a call, query or control of
//! a variant it does not know (one of a later minor) `unsupported`, not `error`.

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{CallOutcome, Control, DutError, SocketCall, StateAnswer, StateQuery, TcpStackConfig};
use crate::sandbox::MacAddr;

/// The protocol's name, as the `hello` carries it.
pub const PROTOCOL: &str = "netconform-agent";
/// The major version: a harness and an agent with different majors refuse each other.
pub const MAJOR: u32 = 1;
/// The minor version: additions that an older peer can ignore.
pub const MINOR: u32 = 2;

/// The first minor version with UDP socket calls ([`SocketCall::is_udp`]): the harness
/// makes them only through an agent of this minor or later.
pub const UDP_MINOR: u32 = 1;

/// The first minor version with the route lookup from a source
/// ([`StateQuery::RouteGetFrom`]): the harness asks it only of an agent of this minor or
/// later.
pub const ROUTE_SOURCE_MINOR: u32 = 2;

/// One request, harness → agent: one JSON object on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the harness, increasing; the reply carries it back.
    pub id: u64,
    /// What is asked (the `op` field and its arguments).
    #[serde(flatten)]
    pub body: RequestBody,
}

/// What a [`Request`] asks, tagged by its `op` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RequestBody {
    /// The handshake, always the first request.
    Hello {
        /// [`PROTOCOL`].
        protocol: String,
        /// [`MAJOR`].
        major: u32,
        /// [`MINOR`].
        minor: u32,
    },
    /// One socket call; the reply is `outcome`.
    Call {
        /// The call.
        call: SocketCall,
    },
    /// One state query; the reply is `answer`.
    Query {
        /// The query.
        query: StateQuery,
    },
    /// One change of a setting; the reply is `ok`.
    Control {
        /// The setting.
        control: Control,
    },
}

/// One reply, agent → harness: one JSON object on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The id of the request answered.
    pub id: u64,
    /// The answer (the `reply` field and its values).
    #[serde(flatten)]
    pub body: ReplyBody,
}

/// What a [`Reply`] says, tagged by its `reply` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ReplyBody {
    /// The agent speaks the protocol: who it is.
    Hello {
        /// [`PROTOCOL`].
        protocol: String,
        /// The agent's major version (must equal the harness's).
        major: u32,
        /// The agent's minor version.
        minor: u32,
        /// The stack's name (`linux`, `lwip`, ...).
        stack: String,
        /// The stack's version (a kernel release, a library version).
        version: String,
        /// Facts the results depend on, one `name = value` line each (reported).
        #[serde(default)]
        environment: Vec<String>,
        /// The TCP options the stack offers ([`TcpStackConfig`]); absent: all of them. An
        /// optional field (an older harness ignores it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tcp_config: Option<TcpStackConfig>,
    },
    /// What the stack answered to a socket call.
    Outcome {
        /// The outcome.
        outcome: CallOutcome,
    },
    /// The answer to a state query.
    Answer {
        /// The answer.
        answer: StateAnswer,
    },
    /// The control was applied.
    Ok,
    /// The stack or the agent cannot do this (the check's verdict is UNSUPPORTED).
    Unsupported {
        /// What cannot be done, and why.
        what: String,
    },
    /// The agent could not do what was asked (the check's verdict is ERROR).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Who an agent is, for its `hello` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The stack's name.
    pub stack: String,
    /// The stack's version.
    pub version: String,
    /// Facts the results depend on, one `name = value` line each.
    pub environment: Vec<String>,
}

/// A stack as an agent drives it. Only [`AgentStack::call`] is required: a stack without
/// state queries or controls answers them `unsupported` by default.
///
/// Return [`DutError::NotSupported`] for what the stack cannot do; any other error is
/// sent as `error` with its message.
pub trait AgentStack {
    /// Name, version and environment for the `hello` reply.
    fn info(&self) -> AgentInfo;
    /// One socket call.
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError>;
    /// The TCP options the stack offers, for the hello (`None`, the default: all of them,
    /// [`TcpStackConfig::ALL`]).
    fn tcp_config(&self) -> Option<TcpStackConfig> {
        None
    }
    /// One state query.
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        Err(DutError::NotSupported {
            what: format!("query {}", query_name(query)),
        })
    }
    /// One change of a setting.
    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        Err(DutError::NotSupported {
            what: control.to_string(),
        })
    }
}

/// The variant name of a query (`TcpSockets`, `RouteGet`), for messages.
pub fn query_name(query: &StateQuery) -> String {
    let debug = format!("{query:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn reply_of<T>(result: Result<T, DutError>, ok: impl FnOnce(T) -> ReplyBody) -> ReplyBody {
    match result {
        Ok(v) => ok(v),
        Err(DutError::NotSupported { what }) => ReplyBody::Unsupported { what },
        Err(e) => ReplyBody::Error {
            message: e.to_string(),
        },
    }
}

/// The reply to one request line.
pub fn handle_line(stack: &mut impl AgentStack, line: &str) -> Reply {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            // Answer with the id when the line has one, so the harness can match it.
            let value = serde_json::from_str::<serde_json::Value>(line).ok();
            let id = value
                .as_ref()
                .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                .unwrap_or(0);
            let body = match value.as_ref().and_then(unknown_variant) {
                Some(what) => ReplyBody::Unsupported { what },
                None => ReplyBody::Error {
                    message: format!("not a {PROTOCOL}/{MAJOR} request: {e}"),
                },
            };
            return Reply { id, body };
        }
    };
    let body = match request.body {
        RequestBody::Hello {
            protocol, major, ..
        } => {
            if protocol == PROTOCOL && major == MAJOR {
                let info = stack.info();
                ReplyBody::Hello {
                    protocol: PROTOCOL.into(),
                    major: MAJOR,
                    minor: MINOR,
                    stack: info.stack,
                    version: info.version,
                    environment: info.environment,
                    tcp_config: stack.tcp_config(),
                }
            } else {
                ReplyBody::Error {
                    message: format!(
                        "this agent speaks {PROTOCOL}/{MAJOR}, the harness {protocol}/{major}"
                    ),
                }
            }
        }
        RequestBody::Call { call } => {
            reply_of(stack.call(&call), |outcome| ReplyBody::Outcome { outcome })
        }
        RequestBody::Query { query } => {
            reply_of(stack.query(&query), |answer| ReplyBody::Answer { answer })
        }
        RequestBody::Control { control } => reply_of(stack.control(&control), |()| ReplyBody::Ok),
    };
    Reply {
        id: request.id,
        body,
    }
}

/// For a call, query or control whose value is a variant this agent does not know (one a
/// later minor version added): what to answer `unsupported` with. `None` for anything else
/// that does not parse, which stays an `error`.
fn unknown_variant(request: &serde_json::Value) -> Option<String> {
    let op = request.get("op")?.as_str()?;
    let value = request.get(op)?;
    let name = match value {
        serde_json::Value::String(name) => name.clone(),
        serde_json::Value::Object(fields) if fields.len() == 1 => fields.keys().next()?.clone(),
        _ => return None,
    };
    let error = match op {
        "call" => serde_json::from_value::<SocketCall>(value.clone()).err(),
        "query" => serde_json::from_value::<StateQuery>(value.clone()).err(),
        "control" => serde_json::from_value::<Control>(value.clone()).err(),
        _ => None,
    }?;
    error.to_string().starts_with("unknown variant").then(|| {
        format!("{op} {name}: not a {op} this agent knows (it speaks {PROTOCOL}/{MAJOR}.{MINOR})")
    })
}

/// Serves requests from `input` until it ends, one reply line on `output` per request line
/// (flushed at once). Returns when the harness closes the agent's stdin.
pub fn serve(
    stack: &mut impl AgentStack,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = handle_line(stack, &line);
        serde_json::to_writer(&mut output, &reply).map_err(std::io::Error::other)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

/// [`serve`] on the process's stdin and stdout (log to stderr: stdout is the protocol's).
pub fn serve_stdio(stack: &mut impl AgentStack) -> std::io::Result<()> {
    serve(stack, std::io::stdin().lock(), std::io::stdout().lock())
}

/// Names of the environment variables the harness sets for the agent.
pub mod vars {
    /// `netconform-agent/1`.
    pub const PROTOCOL: &str = "NETCONFORM_AGENT_PROTOCOL";
    /// The stack's network namespace (`ncf-<pid>-<n>-t`).
    pub const NAMESPACE: &str = "NETCONFORM_NAMESPACE";
    /// The stack's interface (a veth end, or a tap device).
    pub const IFNAME: &str = "NETCONFORM_IFNAME";
    /// What `IFNAME` is: `veth` (open it with AF_PACKET, or the kernel owns it) or `tap`
    /// (open it through `/dev/net/tun` with `IFF_TAP | IFF_NO_PI`). Unset means `veth`.
    pub const INTERFACE_KIND: &str = "NETCONFORM_INTERFACE_KIND";
    /// The MAC the stack uses (the interface's own for a veth).
    pub const MAC: &str = "NETCONFORM_MAC";
    /// The peer's MAC (the harness end).
    pub const PEER_MAC: &str = "NETCONFORM_PEER_MAC";
    /// The stack's IPv4 address and prefix (`10.77.0.2/24`); unset without IPv4.
    pub const IPV4: &str = "NETCONFORM_IPV4";
    /// The peer's IPv4 address; unset without IPv4.
    pub const PEER_IPV4: &str = "NETCONFORM_PEER_IPV4";
    /// The stack's IPv6 address and prefix (`fd77::2/64`); unset without IPv6.
    pub const IPV6: &str = "NETCONFORM_IPV6";
    /// The peer's IPv6 address; unset without IPv6.
    pub const PEER_IPV6: &str = "NETCONFORM_PEER_IPV6";
    /// Link MTU.
    pub const MTU: &str = "NETCONFORM_MTU";
    /// `1` when the harness put the addresses on the interface in the kernel, `0` when the
    /// stack owns them (a user-space stack on the interface).
    pub const KERNEL_ADDRESSES: &str = "NETCONFORM_KERNEL_ADDRESSES";
    /// `1` when the check wants the peer's MAC known in advance (no ARP or ND first).
    pub const PEER_PRERESOLVED: &str = "NETCONFORM_PEER_PRERESOLVED";
    /// Settings the check pins, one `name=value` per line (Linux sysctl names).
    pub const SETTINGS: &str = "NETCONFORM_SETTINGS";
}

/// What the harness tells an agent about its interface, through environment variables
/// ([`vars`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEnv {
    /// The stack's network namespace.
    pub namespace: String,
    /// The stack's interface.
    pub interface: String,
    /// What the interface is: `veth` or `tap` ([`vars::INTERFACE_KIND`]).
    pub interface_kind: String,
    /// The stack's MAC.
    pub mac: MacAddr,
    /// The peer's MAC.
    pub peer_mac: MacAddr,
    /// The stack's IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// The peer's IPv4 address.
    pub peer_ipv4: Option<Ipv4Addr>,
    /// The stack's IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// The peer's IPv6 address.
    pub peer_ipv6: Option<Ipv6Addr>,
    /// Link MTU.
    pub mtu: u32,
    /// The harness put the addresses on the interface in the kernel.
    pub kernel_addresses: bool,
    /// The stack should know the peer's MAC before the first exchange.
    pub peer_preresolved: bool,
    /// Settings the check pins, `(name, value)`.
    pub settings: Vec<(String, String)>,
}

impl AgentEnv {
    /// The variables, as the harness sets them (unset ones are left out).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut v = vec![
            (vars::PROTOCOL, format!("{PROTOCOL}/{MAJOR}")),
            (vars::NAMESPACE, self.namespace.clone()),
            (vars::IFNAME, self.interface.clone()),
            (vars::INTERFACE_KIND, self.interface_kind.clone()),
            (vars::MAC, self.mac.to_string()),
            (vars::PEER_MAC, self.peer_mac.to_string()),
            (vars::MTU, self.mtu.to_string()),
            (vars::KERNEL_ADDRESSES, flag(self.kernel_addresses)),
            (vars::PEER_PRERESOLVED, flag(self.peer_preresolved)),
            (
                vars::SETTINGS,
                self.settings
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ];
        if let Some((a, p)) = self.ipv4 {
            v.push((vars::IPV4, format!("{a}/{p}")));
        }
        if let Some(a) = self.peer_ipv4 {
            v.push((vars::PEER_IPV4, a.to_string()));
        }
        if let Some((a, p)) = self.ipv6 {
            v.push((vars::IPV6, format!("{a}/{p}")));
        }
        if let Some(a) = self.peer_ipv6 {
            v.push((vars::PEER_IPV6, a.to_string()));
        }
        v
    }

    /// Reads the variables of the current process (in an agent).
    pub fn from_env() -> Result<AgentEnv, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (`None`: unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AgentEnv, String> {
        let need = |name: &str| lookup(name).ok_or_else(|| format!("{name} is not set"));
        fn parse<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{name}: cannot parse `{text}`"))
        }
        fn with_prefix<T: std::str::FromStr>(name: &str, text: &str) -> Result<(T, u8), String> {
            let (a, p) = text
                .split_once('/')
                .ok_or_else(|| format!("{name}: `{text}` is not address/prefix"))?;
            Ok((parse(name, a)?, parse(name, p)?))
        }
        let optional = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Ok(AgentEnv {
            namespace: lookup(vars::NAMESPACE).unwrap_or_default(),
            interface: need(vars::IFNAME)?,
            interface_kind: optional(vars::INTERFACE_KIND).unwrap_or_else(|| "veth".into()),
            mac: parse(vars::MAC, &need(vars::MAC)?)?,
            peer_mac: parse(vars::PEER_MAC, &need(vars::PEER_MAC)?)?,
            ipv4: optional(vars::IPV4)
                .map(|t| with_prefix(vars::IPV4, &t))
                .transpose()?,
            peer_ipv4: optional(vars::PEER_IPV4)
                .map(|t| parse(vars::PEER_IPV4, &t))
                .transpose()?,
            ipv6: optional(vars::IPV6)
                .map(|t| with_prefix(vars::IPV6, &t))
                .transpose()?,
            peer_ipv6: optional(vars::PEER_IPV6)
                .map(|t| parse(vars::PEER_IPV6, &t))
                .transpose()?,
            mtu: parse(vars::MTU, &need(vars::MTU)?)?,
            kernel_addresses: lookup(vars::KERNEL_ADDRESSES).as_deref() == Some("1"),
            peer_preresolved: lookup(vars::PEER_PRERESOLVED).as_deref() == Some("1"),
            settings: lookup(vars::SETTINGS)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::{Family, SocketId, SocketOption, TcpSocketState, TcpState};

    fn round_trip_request(r: &Request) -> String {
        let line = serde_json::to_string(r).unwrap();
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(&back, r, "{line}");
        line
    }

    fn round_trip_reply(r: &Reply) -> String {
        let line = serde_json::to_string(r).unwrap();
        let back: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!(&back, r, "{line}");
        line
    }

    /// The shapes docs/agent-protocol.md shows, byte for byte.
    #[test]
    fn requests_have_the_documented_shape() {
        let hello = Request {
            id: 1,
            body: RequestBody::Hello {
                protocol: PROTOCOL.into(),
                major: 1,
                minor: 0,
            },
        };
        assert_eq!(
            round_trip_request(&hello),
            r#"{"id":1,"op":"hello","protocol":"netconform-agent","major":1,"minor":0}"#
        );
        let listen = Request {
            id: 2,
            body: RequestBody::Call {
                call: SocketCall::Listen {
                    sock: SocketId(1),
                    family: Family::Ipv4,
                    addr: None,
                    port: 8080,
                    backlog: 8,
                },
            },
        };
        assert_eq!(
            round_trip_request(&listen),
            r#"{"id":2,"op":"call","call":{"Listen":{"sock":1,"family":"Ipv4","addr":null,"port":8080,"backlog":8}}}"#
        );
        let send = Request {
            id: 3,
            body: RequestBody::Call {
                call: SocketCall::Send {
                    sock: SocketId(65536),
                    data: b"hi".to_vec(),
                },
            },
        };
        assert_eq!(
            round_trip_request(&send),
            r#"{"id":3,"op":"call","call":{"Send":{"sock":65536,"data":[104,105]}}}"#
        );
        let option = Request {
            id: 4,
            body: RequestBody::Call {
                call: SocketCall::SetOption {
                    sock: SocketId(1),
                    option: SocketOption::Linger(Some(0)),
                },
            },
        };
        assert_eq!(
            round_trip_request(&option),
            r#"{"id":4,"op":"call","call":{"SetOption":{"sock":1,"option":{"Linger":0}}}}"#
        );
        let query = Request {
            id: 5,
            body: RequestBody::Query {
                query: StateQuery::TcpSockets,
            },
        };
        assert_eq!(
            round_trip_request(&query),
            r#"{"id":5,"op":"query","query":"TcpSockets"}"#
        );
        let route_get = Request {
            id: 6,
            body: RequestBody::Query {
                query: StateQuery::RouteGet("10.77.0.1".parse().unwrap()),
            },
        };
        assert_eq!(
            round_trip_request(&route_get),
            r#"{"id":6,"op":"query","query":{"RouteGet":"10.77.0.1"}}"#
        );
        let control = Request {
            id: 7,
            body: RequestBody::Control {
                control: Control::Forwarding(true),
            },
        };
        assert_eq!(
            round_trip_request(&control),
            r#"{"id":7,"op":"control","control":{"Forwarding":true}}"#
        );
        let flush = Request {
            id: 8,
            body: RequestBody::Control {
                control: Control::FlushNeighbours,
            },
        };
        assert_eq!(
            round_trip_request(&flush),
            r#"{"id":8,"op":"control","control":"FlushNeighbours"}"#
        );
        // Minor 1: the UDP calls; the TCP calls above kept their shape.
        let udp = [
            (
                SocketCall::UdpBind {
                    sock: SocketId(1),
                    addr: "10.77.0.2".parse().unwrap(),
                    port: 5353,
                },
                r#"{"id":9,"op":"call","call":{"UdpBind":{"sock":1,"addr":"10.77.0.2","port":5353}}}"#,
            ),
            (
                SocketCall::SendTo {
                    sock: SocketId(1),
                    addr: "10.77.0.1".parse().unwrap(),
                    port: 40000,
                    data: b"hi".to_vec(),
                },
                r#"{"id":9,"op":"call","call":{"SendTo":{"sock":1,"addr":"10.77.0.1","port":40000,"data":[104,105]}}}"#,
            ),
            (
                SocketCall::RecvFrom {
                    sock: SocketId(1),
                    max: 1500,
                    timeout_ms: 1000,
                },
                r#"{"id":9,"op":"call","call":{"RecvFrom":{"sock":1,"max":1500,"timeout_ms":1000}}}"#,
            ),
        ];
        for (call, line) in udp {
            assert!(call.is_udp());
            let request = Request {
                id: 9,
                body: RequestBody::Call { call },
            };
            assert_eq!(round_trip_request(&request), line);
        }
    }

    #[test]
    fn udp_calls_and_outcomes_read_in_traces() {
        let addr = "10.77.0.1".parse().unwrap();
        let calls = [
            SocketCall::UdpBind {
                sock: SocketId(1),
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            SocketCall::SendTo {
                sock: SocketId(1),
                addr,
                port: 53,
                data: vec![0; 12],
            },
            SocketCall::RecvFrom {
                sock: SocketId(1),
                max: 512,
                timeout_ms: 100,
            },
        ];
        let text: Vec<String> = calls.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "udp_bind(s1, 0.0.0.0:0)",
                "sendto(s1, 10.77.0.1:53, 12 bytes)",
                "recvfrom(s1, 512, 100 ms)"
            ]
        );
        let v6 = SocketCall::SendTo {
            sock: SocketId(2),
            addr: "fd77::1".parse().unwrap(),
            port: 53,
            data: vec![],
        };
        assert_eq!(v6.to_string(), "sendto(s2, [fd77::1]:53, 0 bytes)");
        let got = CallOutcome::Datagram {
            from: "10.77.0.1:40000".parse().unwrap(),
            data: b"hello".to_vec(),
        };
        assert_eq!(got.to_string(), "datagram 5 bytes from 10.77.0.1:40000");
        assert!(!SocketCall::Close { sock: SocketId(1) }.is_udp());
    }

    #[test]
    fn replies_have_the_documented_shape() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply {
                    id: 1,
                    body: ReplyBody::Hello {
                        protocol: PROTOCOL.into(),
                        major: 1,
                        minor: 0,
                        stack: "linux".into(),
                        version: "6.8.0".into(),
                        environment: vec!["net.ipv4.tcp_sack = 1".into()],
                        tcp_config: None,
                    },
                },
                r#"{"id":1,"reply":"hello","protocol":"netconform-agent","major":1,"minor":0,"stack":"linux","version":"6.8.0","environment":["net.ipv4.tcp_sack = 1"]}"#,
            ),
            (
                Reply {
                    id: 2,
                    body: ReplyBody::Outcome {
                        outcome: CallOutcome::Ok,
                    },
                },
                r#"{"id":2,"reply":"outcome","outcome":"Ok"}"#,
            ),
            (
                Reply {
                    id: 3,
                    body: ReplyBody::Outcome {
                        outcome: CallOutcome::errno(111),
                    },
                },
                r#"{"id":3,"reply":"outcome","outcome":{"Errno":{"code":111,"name":"ECONNREFUSED"}}}"#,
            ),
            (
                Reply {
                    id: 4,
                    body: ReplyBody::Outcome {
                        outcome: CallOutcome::Data(b"ok".to_vec()),
                    },
                },
                r#"{"id":4,"reply":"outcome","outcome":{"Data":[111,107]}}"#,
            ),
            (
                Reply {
                    id: 4,
                    body: ReplyBody::Outcome {
                        outcome: CallOutcome::Datagram {
                            from: "10.77.0.1:40000".parse().unwrap(),
                            data: b"ok".to_vec(),
                        },
                    },
                },
                r#"{"id":4,"reply":"outcome","outcome":{"Datagram":{"from":"10.77.0.1:40000","data":[111,107]}}}"#,
            ),
            (
                Reply {
                    id: 5,
                    body: ReplyBody::Answer {
                        answer: StateAnswer::TcpSockets(vec![TcpSocketState {
                            state: TcpState::Listen,
                            local: "10.77.0.2:8080".parse().unwrap(),
                            remote: "0.0.0.0:0".parse().unwrap(),
                            sock: Some(SocketId(1)),
                            recv_queue: 0,
                            send_queue: 8,
                        }]),
                    },
                },
                r#"{"id":5,"reply":"answer","answer":{"TcpSockets":[{"state":"Listen","local":"10.77.0.2:8080","remote":"0.0.0.0:0","sock":1,"recv_queue":0,"send_queue":8}]}}"#,
            ),
            (
                Reply {
                    id: 6,
                    body: ReplyBody::Ok,
                },
                r#"{"id":6,"reply":"ok"}"#,
            ),
            (
                Reply {
                    id: 7,
                    body: ReplyBody::Unsupported {
                        what: "query Fdb".into(),
                    },
                },
                r#"{"id":7,"reply":"unsupported","what":"query Fdb"}"#,
            ),
            (
                Reply {
                    id: 8,
                    body: ReplyBody::Error {
                        message: "no socket s9".into(),
                    },
                },
                r#"{"id":8,"reply":"error","message":"no socket s9"}"#,
            ),
        ];
        for (reply, line) in cases {
            assert_eq!(round_trip_reply(&reply), line);
        }
    }

    struct Echo;
    impl AgentStack for Echo {
        fn info(&self) -> AgentInfo {
            AgentInfo {
                stack: "echo".into(),
                version: "0".into(),
                environment: vec![],
            }
        }
        fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
            match call {
                SocketCall::Close { sock } => Err(DutError::UnknownSocket(*sock)),
                _ => Ok(CallOutcome::Ok),
            }
        }
    }

    #[test]
    fn serve_answers_every_line_in_order() {
        let input = concat!(
            r#"{"id":1,"op":"hello","protocol":"netconform-agent","major":1,"minor":3}"#,
            "\n\n",
            r#"{"id":2,"op":"call","call":{"Close":{"sock":4}}}"#,
            "\n",
            r#"{"id":3,"op":"query","query":"Neighbours"}"#,
            "\n",
            r#"{"id":4,"op":"control","control":"FlushNeighbours"}"#,
            "\n",
            r#"{"id":5,"op":"dance"}"#,
            "\n",
            r#"{"id":6,"op":"hello","protocol":"netconform-agent","major":2,"minor":0}"#,
            "\n",
        );
        let mut out = Vec::new();
        serve(&mut Echo, input.as_bytes(), &mut out).unwrap();
        let replies: Vec<Reply> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            replies.iter().map(|r| r.id).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        assert!(matches!(&replies[0].body, ReplyBody::Hello { stack, .. } if stack == "echo"));
        assert_eq!(
            replies[1].body,
            ReplyBody::Error {
                message: "no socket s4".into()
            }
        );
        assert_eq!(
            replies[2].body,
            ReplyBody::Unsupported {
                what: "query Neighbours".into()
            }
        );
        assert_eq!(
            replies[3].body,
            ReplyBody::Unsupported {
                what: "flush neighbours".into()
            }
        );
        assert!(
            matches!(&replies[4].body, ReplyBody::Error { message } if message.contains("not a netconform-agent/1 request"))
        );
        assert!(
            matches!(&replies[5].body, ReplyBody::Error { message } if message.contains("the harness netconform-agent/2"))
        );
    }

    /// A call, query or control of a later minor version is `unsupported`; a known one with
    /// the wrong fields is still an `error`.
    #[test]
    fn unknown_variants_are_unsupported() {
        let input = concat!(
            r#"{"id":1,"op":"call","call":{"Multicast":{"sock":1,"group":"224.0.0.251"}}}"#,
            "\n",
            r#"{"id":2,"op":"query","query":"UdpSockets"}"#,
            "\n",
            r#"{"id":3,"op":"control","control":{"Mtu":1280}}"#,
            "\n",
            r#"{"id":4,"op":"call","call":{"UdpBind":{"sock":1}}}"#,
            "\n",
        );
        let mut out = Vec::new();
        serve(&mut Echo, input.as_bytes(), &mut out).unwrap();
        let replies: Vec<Reply> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            replies[0].body,
            ReplyBody::Unsupported {
                what:
                    "call Multicast: not a call this agent knows (it speaks netconform-agent/1.2)"
                        .into()
            }
        );
        assert!(
            matches!(&replies[1].body, ReplyBody::Unsupported { what } if what.starts_with("query UdpSockets: "))
        );
        assert!(
            matches!(&replies[2].body, ReplyBody::Unsupported { what } if what.starts_with("control Mtu: "))
        );
        assert!(
            matches!(&replies[3].body, ReplyBody::Error { message } if message.contains("not a netconform-agent/1 request")),
            "{:?}",
            replies[3].body
        );
    }

    #[test]
    fn env_round_trips() {
        let env = AgentEnv {
            namespace: "ncf-1-2-t".into(),
            interface: "ncf3t".into(),
            interface_kind: "tap".into(),
            mac: "02:00:00:00:00:02".parse().unwrap(),
            peer_mac: "02:00:00:00:00:01".parse().unwrap(),
            ipv4: Some(("10.77.0.2".parse().unwrap(), 24)),
            peer_ipv4: Some("10.77.0.1".parse().unwrap()),
            ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
            kernel_addresses: true,
            peer_preresolved: false,
            settings: vec![
                ("net.ipv4.tcp_early_retrans".into(), "3".into()),
                ("net.ipv4.tcp_rmem".into(), "4096 131072 6291456".into()),
            ],
        };
        let vars: std::collections::HashMap<_, _> = env.vars().into_iter().collect();
        let back = AgentEnv::from_lookup(|name| vars.get(name).cloned()).unwrap();
        assert_eq!(back, env);
        let missing = AgentEnv::from_lookup(|_| None).unwrap_err();
        assert_eq!(missing, "NETCONFORM_IFNAME is not set");
    }
}
