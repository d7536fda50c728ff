//! Route tables checked against a stack's FIB straight through rtnetlink, pipelined: install
//! a table in the model and the stack, look up many destinations in both, and stop at the
//! first difference.
//!
//! Used by `netconform bench --routes`; the checks and the generated tables of
//! `tests/routes.rs` run route scenarios through a session instead
//! ([`super::scenario`]). The destinations that find mistakes sit at the edges of prefixes,
//! for the bench and for every scenario:
//! [`edge_destinations`] gives, for each route, the first and last address of its prefix and
//! the addresses just outside it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::models::route::{Route, RouteAnswer, RouteError, RouteTable};
use crate::sandbox::{Rtnl, SandboxError};

/// One lookup: a destination and optionally a source.
pub type Query = (IpAddr, Option<IpAddr>);

/// Why a table did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableMismatch {
    /// The stack refused a route the model accepts.
    #[error("the stack refused route {route}: {errno} (the model accepts it)")]
    Refused {
        /// The route.
        route: Route,
        /// The errno.
        errno: String,
    },
    /// A lookup answered differently.
    #[error(
        "route get {dst}{}: model {}, stack {} (deciding route in the model: {})",
        src.map(|s| format!(" from {s}")).unwrap_or_default(),
        show(model), show(stack),
        deciding.map(|r| r.to_string()).unwrap_or_else(|| "none".into())
    )]
    Lookup {
        /// Destination.
        dst: IpAddr,
        /// Source given.
        src: Option<IpAddr>,
        /// The model's answer.
        model: Result<RouteAnswer, RouteError>,
        /// The stack's answer.
        stack: Result<RouteAnswer, RouteError>,
        /// The route that decides the lookup in the model.
        deciding: Option<Route>,
    },
}

fn show(r: &Result<RouteAnswer, RouteError>) -> String {
    match r {
        Ok(a) => a.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Adds to `model` every route it accepts (the others are dropped: the generator's routes
/// that the stack would refuse, e.g. a duplicate prefix and metric) and returns those.
pub fn accepted_routes(model: &mut RouteTable, routes: &[Route]) -> Vec<Route> {
    routes
        .iter()
        .filter(|r| model.add(**r).is_ok())
        .copied()
        .collect()
}

/// Installs `routes` on the stack (after removing the routes a previous table left);
/// every refusal is a mismatch.
pub fn install(
    rtnl: &mut Rtnl,
    routes: &[Route],
) -> Result<Result<(), TableMismatch>, SandboxError> {
    rtnl.flush_static_routes()?;
    for (route, outcome) in routes.iter().zip(rtnl.install_routes(routes)?) {
        if let Err(errno) = outcome {
            return Ok(Err(TableMismatch::Refused {
                route: *route,
                errno: format!("{errno} ({})", errno.desc()),
            }));
        }
    }
    Ok(Ok(()))
}

/// Looks up every query in the stack (pipelined, `window` in flight) and in the model;
/// the first difference is returned. Queries the model leaves out of scope are skipped.
/// Returns how many lookups were compared.
pub fn verify(
    rtnl: &mut Rtnl,
    model: &RouteTable,
    queries: &[Query],
    window: usize,
) -> Result<Result<usize, TableMismatch>, SandboxError> {
    let mut compared = 0;
    for chunk in queries.chunks(4096) {
        let stack = rtnl.lookup_many(chunk, window)?;
        for (&(dst, src), stack) in chunk.iter().zip(stack) {
            let predicted = model.lookup(dst, src);
            if predicted == Err(RouteError::OutOfScope) {
                continue;
            }
            compared += 1;
            if predicted != stack {
                return Ok(Err(TableMismatch::Lookup {
                    dst,
                    src,
                    model: predicted,
                    stack,
                    deciding: model.matching_route(dst).map(|(r, _)| r),
                }));
            }
        }
    }
    Ok(Ok(compared))
}

fn offset(addr: IpAddr, delta: i128) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) => {
            let v = i128::from(u32::from(a)) + delta;
            u32::try_from(v).ok().map(|v| IpAddr::V4(v.into()))
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let v = if delta >= 0 {
                v.checked_add(delta as u128)
            } else {
                v.checked_sub(delta.unsigned_abs())
            };
            v.map(|v| IpAddr::V6(v.into()))
        }
    }
}

/// The edges of a prefix: its first and last address and the addresses just outside it.
pub fn prefix_edges(net: IpNet) -> impl Iterator<Item = IpAddr> {
    let first = net.network();
    let last = net.broadcast();
    [
        Some(first),
        Some(last),
        offset(first, -1),
        offset(last, 1),
        offset(first, 1),
    ]
    .into_iter()
    .flatten()
}

/// Edge destinations of `routes` (see [`prefix_edges`]), in scope for the model, without
/// repeats, in route order.
pub fn edge_destinations(routes: &[Route]) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    routes
        .iter()
        .flat_map(|r| prefix_edges(r.dst))
        .filter(|d| RouteTable::in_scope(*d) && seen.insert(*d))
        .collect()
}

/// [`verify`] on several sockets at once, one thread each (the queries split in equal
/// parts): the kernel answers lookups in parallel, and the model is shared read-only.
/// Returns how many lookups were compared, or the first difference a thread found.
pub fn verify_parallel(
    sockets: &mut [Rtnl],
    model: &RouteTable,
    queries: &[Query],
    window: usize,
) -> Result<Result<usize, TableMismatch>, SandboxError> {
    if sockets.is_empty() {
        return Ok(Ok(0));
    }
    let part = queries.len().div_ceil(sockets.len()).max(1);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter_mut()
            .zip(queries.chunks(part))
            .map(|(rtnl, chunk)| scope.spawn(move || verify(rtnl, model, chunk, window)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut compared = 0;
    for r in results {
        match r? {
            Ok(n) => compared += n,
            Err(m) => return Ok(Err(m)),
        }
    }
    Ok(Ok(compared))
}
