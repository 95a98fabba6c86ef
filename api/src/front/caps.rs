//! Connection caps: at most `total` open connections, and at most `per_peer` from one peer.
//! An IPv6 peer is its /64, since one host commonly holds a whole /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    Peer,
}

impl Refused {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "refused_total",
            Refused::Peer => "refused_peer",
        }
    }
}

pub struct Caps {
    total: usize,
    per_peer: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    peers: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct Admitted {
    caps: Arc<Caps>,
    peer: IpAddr,
}

/// The address a peer is counted under.
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

impl Caps {
    pub fn new(total: usize, per_peer: usize) -> Arc<Caps> {
        Arc::new(Caps {
            total,
            per_peer,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let peer = peer_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.total {
            return Err(Refused::Total);
        }
        let n = open.peers.entry(peer).or_insert(0);
        if *n >= self.per_peer {
            return Err(Refused::Peer);
        }
        *n += 1;
        open.total += 1;
        Ok(Admitted {
            caps: Arc::clone(self),
            peer,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.peers.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_peer_cap_refuses_the_next_and_frees_on_drop() {
        let caps = Caps::new(10, 2);
        let a = caps.admit(ip("10.0.0.1")).unwrap();
        let _b = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).err(), Some(Refused::Peer));
        assert!(
            caps.admit(ip("10.0.0.2")).is_ok(),
            "another peer still gets in"
        );
        drop(a);
        assert!(caps.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn total_cap_refuses_every_peer() {
        let caps = Caps::new(2, 5);
        let _a = caps.admit(ip("10.0.0.1")).unwrap();
        let _b = caps.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.3")).err(), Some(Refused::Total));
        drop(_b);
        assert!(caps.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn an_ipv6_peer_is_its_slash_64_and_mapped_ipv4_is_ipv4() {
        let caps = Caps::new(10, 1);
        let _a = caps.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            caps.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refused::Peer),
            "same /64"
        );
        assert!(caps.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        let _v4 = caps.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            caps.admit(ip("::ffff:192.0.2.7")).err(),
            Some(Refused::Peer)
        );
    }
}
