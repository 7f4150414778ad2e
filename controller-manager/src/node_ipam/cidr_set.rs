//! A set of equal-sized subnets of a cluster CIDR, handed out in order
//! (upstream's cidrset): allocation continues after the last one given, so
//! a freed subnet is not reused at once.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid CIDR {0:?}")]
    Invalid(String),
    #[error("node mask size /{node} must be at least the cluster CIDR's /{cluster}")]
    MaskTooSmall { node: u8, cluster: u8 },
    #[error("node mask size /{node} is too far from the cluster CIDR's /{cluster} (at most 16 bits for IPv6)")]
    TooManySubnets { node: u8, cluster: u8 },
    #[error("CIDR {0} is outside the cluster CIDR")]
    OutOfRange(String),
    #[error("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")]
    Exhausted,
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, CidrError> {
        let bad = || CidrError::Invalid(s.to_string());
        let (ip, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > bits(&addr) {
            return Err(bad());
        }
        // The network address (host bits cleared), as Go's ParseCIDR gives.
        let c = Cidr { addr, prefix };
        Ok(Cidr {
            addr: from_u128(c.network(), addr.is_ipv6()),
            prefix,
        })
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn bits(&self) -> u8 {
        bits(&self.addr)
    }

    fn network(&self) -> u128 {
        let v = to_u128(&self.addr);
        let host_bits = u32::from(self.bits() - self.prefix);
        if host_bits >= 128 {
            0
        } else {
            (v >> host_bits) << host_bits
        }
    }

    /// Whether `other` lies inside this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.is_ipv6() == self.is_ipv6()
            && other.prefix >= self.prefix
            && Cidr {
                addr: other.addr,
                prefix: self.prefix,
            }
            .network()
                == self.network()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(addr: &IpAddr) -> u8 {
    if addr.is_ipv6() {
        128
    } else {
        32
    }
}

fn to_u128(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

pub struct CidrSet {
    cluster: Cidr,
    node_prefix: u8,
    /// Number of node subnets in the cluster CIDR.
    max: u128,
    used: HashSet<u128>,
    next_candidate: u128,
}

impl CidrSet {
    pub fn new(cluster: Cidr, node_prefix: u8) -> Result<Self, CidrError> {
        if node_prefix < cluster.prefix || node_prefix > cluster.bits() {
            return Err(CidrError::MaskTooSmall {
                node: node_prefix,
                cluster: cluster.prefix,
            });
        }
        let diff = node_prefix - cluster.prefix;
        if (cluster.is_ipv6() && diff > 16) || diff > 32 {
            return Err(CidrError::TooManySubnets {
                node: node_prefix,
                cluster: cluster.prefix,
            });
        }
        Ok(Self {
            cluster,
            node_prefix,
            max: 1u128 << diff,
            used: HashSet::new(),
            next_candidate: 0,
        })
    }

    pub fn cluster(&self) -> Cidr {
        self.cluster
    }

    fn subnet(&self, index: u128) -> Cidr {
        let host_bits = u32::from(self.cluster.bits() - self.node_prefix);
        let base = self.cluster.network() + (index << host_bits);
        Cidr {
            addr: from_u128(base, self.cluster.is_ipv6()),
            prefix: self.node_prefix,
        }
    }

    /// Indices of the node subnets `cidr` covers (or lies in).
    fn indices(&self, cidr: &Cidr) -> Result<std::ops::Range<u128>, CidrError> {
        if !self.cluster.overlaps(cidr) {
            return Err(CidrError::OutOfRange(cidr.to_string()));
        }
        let host_bits = u32::from(self.cluster.bits() - self.node_prefix);
        let start = cidr.network().max(self.cluster.network());
        let first = (start - self.cluster.network()) >> host_bits;
        let count = if cidr.prefix >= self.node_prefix {
            1
        } else {
            (1u128 << (self.node_prefix - cidr.prefix.max(self.cluster.prefix))).min(self.max)
        };
        Ok(first..(first + count).min(self.max))
    }

    /// The next free subnet, searching on from the last one given.
    pub fn allocate_next(&mut self) -> Result<Cidr, CidrError> {
        let mut i = 0u128;
        while i < self.max {
            let candidate = (self.next_candidate + i) % self.max;
            if !self.used.contains(&candidate) {
                self.used.insert(candidate);
                self.next_candidate = (candidate + 1) % self.max;
                return Ok(self.subnet(candidate));
            }
            i += 1;
        }
        Err(CidrError::Exhausted)
    }

    /// Mark subnets as used (e.g. a node's existing podCIDR, the service range).
    pub fn occupy(&mut self, cidr: &Cidr) -> Result<(), CidrError> {
        for i in self.indices(cidr)? {
            self.used.insert(i);
        }
        Ok(())
    }

    pub fn release(&mut self, cidr: &Cidr) -> Result<(), CidrError> {
        for i in self.indices(cidr)? {
            self.used.remove(&i);
        }
        Ok(())
    }

    pub fn is_used(&self, cidr: &Cidr) -> bool {
        self.indices(cidr)
            .map(|mut r| r.any(|i| self.used.contains(&i)))
            .unwrap_or(false)
    }

    pub fn allocated(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cluster: &str, mask: u8) -> CidrSet {
        CidrSet::new(Cidr::parse(cluster).unwrap(), mask).unwrap()
    }

    #[test]
    fn hands_out_distinct_subnets_in_order() {
        let mut s = set("10.244.0.0/16", 24);
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.244.0.0/24");
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.244.1.0/24");
        s.occupy(&Cidr::parse("10.244.2.0/24").unwrap()).unwrap();
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.244.3.0/24");
        // A released subnet is not reused at once.
        s.release(&Cidr::parse("10.244.0.0/24").unwrap()).unwrap();
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.244.4.0/24");
    }

    #[test]
    fn exhausts_and_wraps() {
        let mut s = set("10.0.0.0/30", 31);
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.0.0.0/31");
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.0.0.2/31");
        assert_eq!(s.allocate_next(), Err(CidrError::Exhausted));
        s.release(&Cidr::parse("10.0.0.0/31").unwrap()).unwrap();
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.0.0.0/31");
    }

    #[test]
    fn occupying_a_larger_range_covers_its_subnets() {
        let mut s = set("10.96.0.0/11", 24);
        s.occupy(&Cidr::parse("10.96.0.0/12").unwrap()).unwrap();
        assert_eq!(s.allocate_next().unwrap().to_string(), "10.112.0.0/24");
        assert!(s.occupy(&Cidr::parse("192.168.0.0/24").unwrap()).is_err());
    }

    #[test]
    fn ipv6_and_parsing() {
        let mut s = set("fd00:10:244::/56", 64);
        assert_eq!(s.allocate_next().unwrap().to_string(), "fd00:10:244::/64");
        assert_eq!(s.allocate_next().unwrap().to_string(), "fd00:10:244:1::/64");
        assert_eq!(
            Cidr::parse("10.244.7.9/16").unwrap().to_string(),
            "10.244.0.0/16"
        );
        assert!(Cidr::parse("10.244.0.0").is_err());
        assert!(Cidr::parse("10.244.0.0/33").is_err());
        assert!(CidrSet::new(Cidr::parse("10.244.0.0/24").unwrap(), 16).is_err());
        assert!(CidrSet::new(Cidr::parse("fd00::/48").unwrap(), 120).is_err());
    }
}
