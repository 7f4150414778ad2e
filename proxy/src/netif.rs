//! This machine's IPv4 addresses (getifaddrs(3)): where NodePorts are
//! answered and which subnets are directly connected (pod routes).

use std::net::Ipv4Addr;

/// An address on a local interface with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
}

impl LocalAddr {
    /// Whether `other` is on this address's subnet.
    pub fn same_subnet(&self, other: Ipv4Addr) -> bool {
        Cidr {
            ip: self.ip,
            len: self.prefix_len,
        }
        .contains(other)
    }
}

/// An IPv4 CIDR, e.g. 10.244.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub ip: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len.min(32)))
        }
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(self.ip) & self.mask() == u32::from(ip) & self.mask()
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.ip) & self.mask())
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 CIDR (a.b.c.d/len)");
        let (ip, len) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if len > 32 {
            return Err(bad());
        }
        Ok(Cidr { ip, len })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.len)
    }
}

/// Every IPv4 address of every interface (loopback included).
pub fn local_addresses() -> std::io::Result<Vec<LocalAddr>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free
    // once with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                && !ifa.ifa_netmask.is_null()
            {
                let addr = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                out.push(LocalAddr {
                    ip: Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                    prefix_len: u32::from_be(mask.sin_addr.s_addr).count_ones() as u8,
                });
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c: Cidr = "10.244.0.0/16".parse().unwrap();
        assert!(c.contains("10.244.3.4".parse().unwrap()));
        assert!(!c.contains("10.245.0.1".parse().unwrap()));
        let host: Cidr = "10.250.0.11/32".parse().unwrap();
        assert!(host.contains("10.250.0.11".parse().unwrap()));
        assert!(!host.contains("10.250.0.12".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(
            "10.244.1.7/24".parse::<Cidr>().unwrap().network(),
            "10.244.1.0".parse::<Ipv4Addr>().unwrap()
        );
        for bad in ["10.0.0.0", "10.0.0.0/33", "fd00::/64", "x/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_listed() {
        let addrs = local_addresses().unwrap();
        assert!(addrs
            .iter()
            .any(|a| a.ip.is_loopback() && a.prefix_len == 8));
    }
}
