//! Which address a request comes from, for limits kept per client address.
//!
//! The socket peer is the client, unless the peer is one of the
//! [`TrustedProxies`] (a load balancer or ingress in front of the service):
//! then `X-Forwarded-For` says who it forwarded for. That header is written
//! by whoever sends the request, so it is read only from a trusted peer, and
//! only as far as trusted proxies appended to it: walking it from the right
//! (the nearest hop first), the client is the first address that is not a
//! trusted proxy. A client cannot pick its own address by sending the header
//! itself: whatever it writes ends up left of the address its first trusted
//! proxy appends.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

/// An address range (`10.0.0.0/8`, `fd00::/8`); a bare address is a range of
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` bits of `a` and `b` agree.
fn prefix_matches(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length other than 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed: `TRUSTED_PROXIES`, a
/// comma-separated list of ranges. Empty (the default): no header is
/// believed and the socket peer is always the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For`
    /// header values (in the order received).
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        let hops = forwarded_for.rev().flat_map(|value| value.rsplit(','));
        for hop in hops {
            if !self.contains(client) {
                break;
            }
            // Something a proxy did not write (or garbage): the nearest
            // trusted hop is as far as the chain can be believed.
            match parse_hop(hop.trim()) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The key limits per address are kept under: an IPv4 address as it is, an
/// IPv6 address by its /64 network, because one subscriber usually holds a
/// whole /64 and could otherwise use a new address for every request.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            format!("{}/64", Ipv6Addr::from(segments))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The client address `proxies` find for `peer` that sent these
    /// `X-Forwarded-For` header lines.
    fn client(proxies: &TrustedProxies, peer: IpAddr, headers: &[&str]) -> IpAddr {
        proxies.client_address(peer, headers.iter().copied())
    }

    fn trusted(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match_by_prefix() {
        let r: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains(ip("10.1.255.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6");
        let odd: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.2.1")));
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "host",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(trusted(" 10.0.0.0/8 , ::1 ,").0.len(), 2);
        assert_eq!(trusted(""), TrustedProxies::default());
        assert!("10.0.0.0/8,nope".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        let peer = ip("203.0.113.9");
        assert_eq!(client(&none, peer, &["198.51.100.1"]), peer);
        let some = trusted("10.0.0.0/8");
        assert_eq!(client(&some, peer, &["10.0.0.1, 198.51.100.1"]), peer);
        assert_eq!(client(&some, peer, &[]), peer);
    }

    #[test]
    fn a_trusted_peer_is_believed_as_far_as_trusted_hops_go() {
        let t = trusted("10.0.0.0/8, 192.168.7.7");
        let peer = ip("10.0.0.2");
        // One proxy: the address it appended.
        assert_eq!(client(&t, peer, &["198.51.100.1"]), ip("198.51.100.1"));
        // The client's own claim sits left of what the proxy appended.
        assert_eq!(
            client(&t, peer, &["6.6.6.6, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        // A chain of trusted proxies, over several header lines.
        assert_eq!(
            client(
                &t,
                peer,
                &["6.6.6.6, 198.51.100.1", "192.168.7.7", " 10.9.9.9"]
            ),
            ip("198.51.100.1")
        );
        // Ports and IPv6 forms are read; IPv4-mapped addresses are IPv4.
        assert_eq!(client(&t, peer, &["198.51.100.1:4711"]), ip("198.51.100.1"));
        assert_eq!(client(&t, peer, &["[2001:db8::7]:443"]), ip("2001:db8::7"));
        assert_eq!(
            client(&t, ip("::ffff:10.0.0.2"), &["::ffff:198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Garbage stops the walk at the nearest trusted hop.
        assert_eq!(client(&t, peer, &["198.51.100.1, unknown"]), peer);
        assert_eq!(client(&t, peer, &["unknown, 10.1.1.1"]), ip("10.1.1.1"));
        // Only trusted hops: the farthest one.
        assert_eq!(client(&t, peer, &["10.3.3.3, 10.4.4.4"]), ip("10.3.3.3"));
        // No header: the proxy itself.
        assert_eq!(client(&t, peer, &[]), peer);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_network() {
        assert_eq!(address_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(address_key(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(address_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }
}
