//! Service address allocation: ClusterIPs from `--service-cluster-ip-range`
//! and NodePorts from `--service-node-port-range`.
//!
//! The allocation state lives in memory, rebuilt from the stored Services at
//! start (one apiserver per store for now; several replicas need the
//! allocation kept in the store, as upstream's range registries do).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rand::Rng;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    #[error("provided IP is not in the valid range. The range of valid IPs is {0}")]
    IpOutOfRange(String),
    #[error("provided IP is already allocated")]
    IpTaken,
    #[error("range is full")]
    Full,
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    PortOutOfRange(String),
    #[error("provided port is already allocated")]
    PortTaken,
    #[error("invalid range {0:?}")]
    BadRange(String),
}

/// A set of allocated integers in [first, last], with random first choice.
#[derive(Debug)]
struct Range {
    first: u32,
    last: u32,
    used: HashSet<u32>,
}

impl Range {
    fn contains(&self, n: u32) -> bool {
        (self.first..=self.last).contains(&n)
    }

    fn take(&mut self, n: u32) -> bool {
        self.used.insert(n)
    }

    fn next(&mut self) -> Option<u32> {
        let size = (self.last - self.first) as u64 + 1;
        if self.used.len() as u64 >= size {
            return None;
        }
        let start = rand::rng().random_range(0..size);
        (0..size)
            .map(|i| self.first + ((start + i) % size) as u32)
            .find(|n| !self.used.contains(n))
            .inspect(|n| {
                self.used.insert(*n);
            })
    }
}

#[derive(Debug)]
pub struct ServiceAllocator {
    cidr: String,
    ports_text: String,
    ips: Mutex<Range>,
    ports: Mutex<Range>,
    /// The range's first usable address (the `kubernetes` Service's).
    pub first_ip: Ipv4Addr,
}

/// Parse "a.b.c.d/n" into the usable host range (network and broadcast excluded).
fn parse_cidr(cidr: &str) -> Result<(u32, u32), AllocError> {
    let bad = || AllocError::BadRange(cidr.to_string());
    let (addr, bits) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let bits: u32 = bits.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&bits) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - bits);
    let net = u32::from(addr) & mask;
    let broadcast = net | !mask;
    Ok((net + 1, broadcast - 1))
}

fn parse_ports(range: &str) -> Result<(u32, u32), AllocError> {
    let bad = || AllocError::BadRange(range.to_string());
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b || b > 65535 {
        return Err(bad());
    }
    Ok((a, b))
}

impl ServiceAllocator {
    pub fn new(cidr: &str, ports: &str) -> Result<Self, AllocError> {
        let (first, last) = parse_cidr(cidr)?;
        let (pf, pl) = parse_ports(ports)?;
        Ok(Self {
            cidr: cidr.to_string(),
            ports_text: ports.to_string(),
            ips: Mutex::new(Range {
                first,
                last,
                used: HashSet::new(),
            }),
            ports: Mutex::new(Range {
                first: pf,
                last: pl,
                used: HashSet::new(),
            }),
            first_ip: Ipv4Addr::from(first),
        })
    }

    /// Allocate `ip` (a specific request) or any free address.
    pub fn allocate_ip(&self, ip: Option<Ipv4Addr>) -> Result<Ipv4Addr, AllocError> {
        let mut r = self.ips.lock().expect("allocator lock");
        match ip {
            Some(ip) => {
                let n = u32::from(ip);
                if !r.contains(n) {
                    return Err(AllocError::IpOutOfRange(self.cidr.clone()));
                }
                if !r.take(n) {
                    return Err(AllocError::IpTaken);
                }
                Ok(ip)
            }
            None => r.next().map(Ipv4Addr::from).ok_or(AllocError::Full),
        }
    }

    pub fn release_ip(&self, ip: Ipv4Addr) {
        self.ips
            .lock()
            .expect("allocator lock")
            .used
            .remove(&u32::from(ip));
    }

    /// Allocate `port` (a specific request) or any free NodePort.
    pub fn allocate_port(&self, port: Option<u16>) -> Result<u16, AllocError> {
        let mut r = self.ports.lock().expect("allocator lock");
        match port {
            Some(p) => {
                if !r.contains(p as u32) {
                    return Err(AllocError::PortOutOfRange(self.ports_text.clone()));
                }
                if !r.take(p as u32) {
                    return Err(AllocError::PortTaken);
                }
                Ok(p)
            }
            None => r.next().map(|p| p as u16).ok_or(AllocError::Full),
        }
    }

    pub fn release_port(&self, port: u16) {
        self.ports
            .lock()
            .expect("allocator lock")
            .used
            .remove(&(port as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_unique_in_range_and_released() {
        let a = ServiceAllocator::new("10.96.0.0/28", "30000-30001").unwrap();
        assert_eq!(a.first_ip, Ipv4Addr::new(10, 96, 0, 1));
        let mut seen = HashSet::new();
        for _ in 0..14 {
            let ip = a.allocate_ip(None).unwrap();
            assert!(seen.insert(ip));
            assert!(u32::from(ip) >= u32::from(Ipv4Addr::new(10, 96, 0, 1)));
            assert!(u32::from(ip) <= u32::from(Ipv4Addr::new(10, 96, 0, 14)));
        }
        assert_eq!(a.allocate_ip(None), Err(AllocError::Full));
        a.release_ip(Ipv4Addr::new(10, 96, 0, 5));
        assert_eq!(
            a.allocate_ip(Some(Ipv4Addr::new(10, 96, 0, 5))),
            Ok(Ipv4Addr::new(10, 96, 0, 5))
        );
        assert_eq!(
            a.allocate_ip(Some(Ipv4Addr::new(10, 96, 0, 5))),
            Err(AllocError::IpTaken)
        );
        assert!(matches!(
            a.allocate_ip(Some(Ipv4Addr::new(10, 97, 0, 5))),
            Err(AllocError::IpOutOfRange(_))
        ));
    }

    #[test]
    fn node_ports() {
        let a = ServiceAllocator::new("10.96.0.0/12", "30000-30001").unwrap();
        assert_eq!(a.allocate_port(Some(30000)), Ok(30000));
        assert_eq!(a.allocate_port(None), Ok(30001));
        assert_eq!(a.allocate_port(None), Err(AllocError::Full));
        assert!(matches!(
            a.allocate_port(Some(80)),
            Err(AllocError::PortOutOfRange(_))
        ));
        assert!(ServiceAllocator::new("10.96.0.0/12", "3-1").is_err());
    }
}
