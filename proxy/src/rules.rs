//! The nftables text of the proxier's one table, `ip kube-proxy`, laid out
//! after upstream's nftables proxier (pkg/proxy/nftables, README there):
//!
//! - `services`, jumped to from `nat-prerouting` (forwarded and pod traffic)
//!   and `nat-output` (the node's own traffic), looks the packet up in the
//!   verdict map `service-ips` keyed on `daddr . l4proto . dport`, and for the
//!   node's addresses in `service-nodeports`: a packet's cost does not grow
//!   with the number of Services.
//! - A Service port's chain `service-…` marks off-cluster clients for
//!   masquerade, then DNATs to an endpoint picked by `numgen random mod N`
//!   from its map `lb-…` (`0 : 10.244.1.5 . 8080, …`). Upstream jumps to a
//!   chain per endpoint through an inline verdict map instead; the direct
//!   DNAT needs a quarter of the objects (a full sync of 1,000 Services
//!   takes ~40% less), and a named map avoids anonymous sets, which the
//!   kernel binds with a walk over the whole transaction (quadratic).
//! - With ClientIP affinity, the service chain sends known clients to their
//!   endpoint (`ip saddr @affinity-… goto endpoint-…`) and the others through
//!   a verdict map `lb-…` to endpoint chains `endpoint-…`, which record the
//!   client (`update @affinity-…`) and DNAT.
//! - Hairpin (a pod sent to itself through its Service) is found after DNAT
//!   in the set `hairpin-endpoints` (`ip saddr . ip daddr . ct original ip
//!   daddr`) and masqueraded, or the answer would not pass the DNAT back.
//! - NodePorts and external IPs enter through `external-…`, which marks for
//!   masquerade (the endpoint may be on another node).
//! - `nat-postrouting` masquerades what was marked.
//! - Services without endpoints are in `no-endpoint-services` /
//!   `no-endpoint-nodeports`, checked from the filter hooks, and rejected at
//!   once (TCP reset, ICMP port unreachable).
//!
//! Everything here is a pure function of the Service ports and
//! [`Settings`]: [`full`] is the whole table, replacing the old one in the
//! same transaction; [`partial`] changes what one Service's change touches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePort};

pub const TABLE: &str = "kube-proxy";
/// The mark bit for "masquerade me" (upstream's default --masquerade-bit 14).
const MASQ_MARK: &str = "0x00004000";
const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const REJECT_CHAIN: &str = "reject-chain";
const MARK_MASQ: &str = "mark-for-masquerade";
const AFFINITY_PREFIX: &str = "affinity-";
/// (client, endpoint, ClusterIP) of every endpoint: a client that is the
/// endpoint it was sent to (a pod reaching itself through its Service) is
/// masqueraded, or its answer would not come back through the DNAT.
const HAIRPIN_SET: &str = "hairpin-endpoints";
const HAIRPIN_TYPE: &str = "typeof ip saddr . ip daddr . ct original ip daddr";

/// Which local addresses answer NodePorts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePortAddresses {
    /// Every local address but loopback (`fib daddr type local`).
    All,
    /// These addresses only (from --nodeport-addresses).
    Only(Vec<Ipv4Addr>),
}

/// What the rules depend on besides the Services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The pods' CIDR: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    pub nodeport_addresses: NodePortAddresses,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster_cidr: None,
            nodeport_addresses: NodePortAddresses::All,
        }
    }
}

/// A regular chain with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub rules: Vec<String>,
}

/// One element of one of the table's shared maps (the dispatch maps) or of
/// the hairpin set (no value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    pub map: &'static str,
    pub key: String,
    pub value: Option<String>,
}

impl Element {
    /// As nft writes it in `elements = { … }`.
    fn text(&self) -> String {
        match &self.value {
            Some(v) => format!("{} : {v}", self.key),
            None => self.key.clone(),
        }
    }
}

/// An endpoint's ClientIP affinity set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinitySet {
    pub name: String,
    pub timeout: u32,
}

/// A Service port's endpoint choice, keyed by `numgen random mod N`:
/// `<i> : <endpoint address> . <port>` (DNAT straight from the map), or
/// with ClientIP affinity `<i> : goto <endpoint chain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbMap {
    pub name: String,
    /// The declaration (`typeof …`); a map's type never changes in place,
    /// so it is part of the name's hash.
    pub typeof_: String,
    pub arms: Vec<String>,
}

/// What one Service port puts into the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub sets: Vec<AffinitySet>,
    pub maps: Vec<LbMap>,
    /// In dependency order: endpoints (with affinity), service, external.
    pub chains: Vec<Chain>,
    pub elements: Vec<Element>,
}

impl Rendered {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    fn extend(&mut self, other: Rendered) {
        self.sets.extend(other.sets);
        self.maps.extend(other.maps);
        self.chains.extend(other.chains);
        self.elements.extend(other.elements);
    }
}

/// Upstream's naming: a hash (so truncated or similar names stay distinct)
/// and then a readable part, e.g. `service-ULMVA6XW-ns1/svc1/tcp/p80`.
/// Names hold `/`, which the fixed chains never do, so they cannot collide.
/// The readable part comes from API objects: anything but what an nft
/// identifier may hold becomes `_` (the text given to nft can never carry
/// more than a name), and it is cut to keep the name within nft's limit
/// (256 bytes).
fn object_name(prefix: &str, base: &str, hashed: &str) -> String {
    const MAX_READABLE: usize = 200;
    let digest = Sha256::digest(hashed.as_bytes());
    let readable: String = base
        .chars()
        .take(MAX_READABLE)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{}-{readable}", base32_8(&digest))
}

/// A set's or map's name: the prefix and a hash only, 80 bits (16
/// characters), with no readable part. The kernel finds a set by walking the
/// table's list of sets comparing names, for every set added and every rule
/// or element naming one, so with one map per Service port (and a set per
/// endpoint with affinity) long names make a full sync measurably slower.
/// The chains that use them carry the readable names.
fn short_name(prefix: &str, hashed: &str) -> String {
    let digest = Sha256::digest(hashed.as_bytes());
    format!(
        "{prefix}{}{}",
        base32_8(&digest[..5]),
        base32_8(&digest[5..10])
    )
}

/// 40 bits (the first 5 bytes of `bytes`) in RFC 4648 base32: 8 characters.
fn base32_8(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    for b in bytes.iter().take(5) {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..8)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn port_base(sp: &ServicePort) -> String {
    format!(
        "{}/{}/{}/{}",
        sp.service.namespace,
        sp.service.name,
        sp.protocol.as_str(),
        sp.port_name
    )
}

fn endpoint_base(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("{}__{}/{}", port_base(sp), ep.ip, ep.port)
}

pub fn service_chain(sp: &ServicePort) -> String {
    let base = port_base(sp);
    object_name("service-", &base, &base)
}

pub fn lb_map(sp: &ServicePort) -> String {
    short_name("lb-", &format!("{}#{}", port_base(sp), lb_map_type(sp)))
}

/// With affinity, each endpoint needs a chain (to record the client);
/// without, the map gives the DNAT address and port at once.
fn lb_map_type(sp: &ServicePort) -> String {
    if sp.affinity_timeout.is_some() {
        "typeof numgen random mod 1 : verdict".into()
    } else {
        format!(
            "typeof numgen random mod 1 : ip daddr . {} dport",
            sp.protocol.as_str()
        )
    }
}

pub fn external_chain(sp: &ServicePort) -> String {
    let base = port_base(sp);
    object_name("external-", &base, &base)
}

pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    let base = endpoint_base(sp, ep);
    object_name("endpoint-", &base, &base)
}

/// The timeout is part of the hash: a set's timeout cannot change in place,
/// so a new timeout makes a new set.
pub fn affinity_set(sp: &ServicePort, ep: &Endpoint, timeout: u32) -> String {
    let base = endpoint_base(sp, ep);
    short_name(AFFINITY_PREFIX, &format!("{base}@{timeout}"))
}

pub fn is_affinity_set(name: &str) -> bool {
    name.starts_with(AFFINITY_PREFIX)
}

/// The map keys a Service port claims (two Services may not share one).
pub fn element_keys(sp: &ServicePort) -> Vec<(&'static str, String)> {
    elements(sp).into_iter().map(|e| (e.map, e.key)).collect()
}

/// A Service port's elements of the dispatch maps: with endpoints, its
/// addresses lead to its chains; without, to the reject chain.
fn elements(sp: &ServicePort) -> Vec<Element> {
    let proto = sp.protocol.as_str();
    let key = |ip: Ipv4Addr| format!("{ip} . {proto} . {}", sp.port);
    let nodeport_key = |np: u16| format!("{proto} . {np}");
    let mut out = Vec::new();
    if sp.endpoints.is_empty() {
        let reject = format!("goto {REJECT_CHAIN}");
        for ip in std::iter::once(sp.cluster_ip).chain(sp.external_ips.iter().copied()) {
            out.push(Element {
                map: NO_ENDPOINT_SERVICES,
                key: key(ip),
                value: Some(reject.clone()),
            });
        }
        if let Some(np) = sp.node_port {
            out.push(Element {
                map: NO_ENDPOINT_NODEPORTS,
                key: nodeport_key(np),
                value: Some(reject),
            });
        }
        return out;
    }
    out.push(Element {
        map: SERVICE_IPS,
        key: key(sp.cluster_ip),
        value: Some(format!("goto {}", service_chain(sp))),
    });
    for ep in &sp.endpoints {
        out.push(Element {
            map: HAIRPIN_SET,
            key: format!("{} . {} . {}", ep.ip, ep.ip, sp.cluster_ip),
            value: None,
        });
    }
    if has_external_chain(sp) {
        let ext = format!("goto {}", external_chain(sp));
        for ip in &sp.external_ips {
            out.push(Element {
                map: SERVICE_IPS,
                key: key(*ip),
                value: Some(ext.clone()),
            });
        }
        if let Some(np) = sp.node_port {
            out.push(Element {
                map: SERVICE_NODEPORTS,
                key: nodeport_key(np),
                value: Some(ext),
            });
        }
    }
    out
}

/// NodePorts and external IPs enter through an external chain.
fn has_external_chain(sp: &ServicePort) -> bool {
    sp.node_port.is_some() || !sp.external_ips.is_empty()
}

/// The sets, chains and map elements of one Service port.
pub fn render(sp: &ServicePort, settings: &Settings) -> Rendered {
    let mut r = Rendered {
        elements: elements(sp),
        ..Default::default()
    };
    if sp.endpoints.is_empty() {
        return r;
    }
    let proto = sp.protocol.as_str();
    let svc_chain = service_chain(sp);
    let mut svc_rules = Vec::new();
    if let Some(cidr) = &settings.cluster_cidr {
        // Upstream also matches the ClusterIP and port here; only ClusterIP
        // traffic and the external chain (which marks anyway) come here, so
        // the source alone decides, with a third of the expressions.
        svc_rules.push(format!("ip saddr != {cidr} jump {MARK_MASQ}"));
    }
    let map = lb_map(sp);
    let n = sp.endpoints.len();
    let mut arms = Vec::with_capacity(n);
    if let Some(timeout) = sp.affinity_timeout {
        // A client seen before goes to its endpoint; a new one is recorded
        // by the endpoint's chain that the random choice leads to.
        for (i, ep) in sp.endpoints.iter().enumerate() {
            let chain = endpoint_chain(sp, ep);
            let set = affinity_set(sp, ep, timeout);
            svc_rules.push(format!("ip saddr @{set} goto {chain}"));
            let rules = vec![
                format!("update @{set} {{ ip saddr }}"),
                format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port),
            ];
            r.sets.push(AffinitySet { name: set, timeout });
            arms.push(format!("{i} : goto {chain}"));
            r.chains.push(Chain { name: chain, rules });
        }
        svc_rules.push(format!("numgen random mod {n} vmap @{map}"));
    } else {
        // No chain per endpoint: a quarter of the objects, and a full sync
        // of 1,000 Services takes ~40% less time (docs/kube-proxy.md).
        for (i, ep) in sp.endpoints.iter().enumerate() {
            arms.push(format!("{i} : {} . {}", ep.ip, ep.port));
        }
        svc_rules.push(format!(
            "meta l4proto {proto} dnat ip addr . port to numgen random mod {n} map @{map}"
        ));
    }
    r.maps.push(LbMap {
        name: map,
        typeof_: lb_map_type(sp),
        arms,
    });
    r.chains.push(Chain {
        name: svc_chain.clone(),
        rules: svc_rules,
    });
    if has_external_chain(sp) {
        r.chains.push(Chain {
            name: external_chain(sp),
            rules: vec![format!("jump {MARK_MASQ}"), format!("goto {svc_chain}")],
        });
    }
    r
}

/// Rules of the fixed part of the table (for the rule count).
pub fn base_rule_count(settings: &Settings) -> usize {
    base_chains(settings)
        .iter()
        .map(|(c, _)| c.rules.len())
        .sum::<usize>()
}

/// Base chains (hooked) and the fixed regular chains.
fn base_chains(settings: &Settings) -> Vec<(Chain, Option<&'static str>)> {
    let hooked = |name: &str, hook: &'static str, rule: &str| {
        (
            Chain {
                name: name.to_string(),
                rules: vec![rule.to_string()],
            },
            Some(hook),
        )
    };
    let plain = |name: &str, rules: &[String]| {
        (
            Chain {
                name: name.to_string(),
                rules: rules.to_vec(),
            },
            None,
        )
    };
    // Where NodePorts are answered.
    let nodeport_match = match settings.nodeport_addresses {
        NodePortAddresses::All => "fib daddr type local ip daddr != 127.0.0.0/8",
        NodePortAddresses::Only(_) => "ip daddr @nodeport-ips",
    };
    vec![
        // Filter chains run before DNAT (priority dstnat - 10), on the
        // Service's own address.
        hooked(
            "filter-input",
            "type filter hook input priority -110; policy accept;",
            "ct state new jump endpoints-check",
        ),
        hooked(
            "filter-forward",
            "type filter hook forward priority -110; policy accept;",
            "ct state new jump endpoints-check",
        ),
        hooked(
            "filter-output",
            "type filter hook output priority -110; policy accept;",
            "ct state new jump endpoints-check",
        ),
        hooked(
            "nat-prerouting",
            "type nat hook prerouting priority -100; policy accept;",
            "jump services",
        ),
        // nft 1.0.6 refuses the name "dstnat" on output: the number it means.
        hooked(
            "nat-output",
            "type nat hook output priority -100; policy accept;",
            "jump services",
        ),
        hooked(
            "nat-postrouting",
            "type nat hook postrouting priority 100; policy accept;",
            "jump masquerading",
        ),
        plain(
            MARK_MASQ,
            &[format!("meta mark set meta mark | {MASQ_MARK}")],
        ),
        plain(
            "masquerading",
            &[
                format!(
                    "ip saddr . ip daddr . ct original ip daddr @{HAIRPIN_SET} jump {MARK_MASQ}"
                ),
                format!("meta mark & {MASQ_MARK} == 0 return"),
                format!("meta mark set meta mark ^ {MASQ_MARK}"),
                "masquerade fully-random".into(),
            ],
        ),
        plain(
            REJECT_CHAIN,
            &[
                "meta l4proto tcp reject with tcp reset".into(),
                "reject".into(),
            ],
        ),
        plain(
            "endpoints-check",
            &[
                format!("ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"),
                format!("{nodeport_match} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"),
            ],
        ),
        plain(
            "services",
            &[
                format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                format!("{nodeport_match} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
            ],
        ),
    ]
}

/// Live ClientIP affinity entries to carry over a full sync: set name ->
/// (client address, seconds left).
pub type AffinityEntries = BTreeMap<String, Vec<(Ipv4Addr, u64)>>;

/// The whole table's transaction and how many rules it makes.
#[derive(Debug, Clone)]
pub struct FullTable {
    pub text: String,
    pub rules: usize,
}

/// The whole table: created if missing, deleted and built anew in the same
/// transaction, so packets see the old rules or the new ones, never a mix.
/// `affinity` keeps clients stuck to their endpoints across the rebuild.
pub fn full<'a>(
    ports: impl IntoIterator<Item = &'a ServicePort>,
    settings: &Settings,
    affinity: &AffinityEntries,
) -> FullTable {
    let mut rules = base_rule_count(settings);
    let mut t = String::with_capacity(1 << 20);
    let _ = writeln!(t, "add table ip {TABLE}\ndelete table ip {TABLE}");
    let _ = writeln!(t, "table ip {TABLE} {{");
    for (chain, hook) in base_chains(settings) {
        let _ = writeln!(t, "\tchain {} {{", chain.name);
        if let Some(hook) = hook {
            let _ = writeln!(t, "\t\t{hook}");
        }
        for rule in &chain.rules {
            let _ = writeln!(t, "\t\t{rule}");
        }
        let _ = writeln!(t, "\t}}");
    }
    if let NodePortAddresses::Only(ips) = &settings.nodeport_addresses {
        let _ = writeln!(t, "\tset nodeport-ips {{\n\t\ttype ipv4_addr");
        if !ips.is_empty() {
            let ips: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
            let _ = writeln!(t, "\t\telements = {{ {} }}", ips.join(", "));
        }
        let _ = writeln!(t, "\t}}");
    }
    // Sets: two ports of one Service may share a hairpin element.
    let mut elements: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for sp in ports {
        let r = render(sp, settings);
        rules += r.rule_count();
        for set in &r.sets {
            let _ = writeln!(
                t,
                "\tset {} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {}s",
                set.name, set.timeout
            );
            if let Some(live) = affinity.get(&set.name).filter(|l| !l.is_empty()) {
                let live: Vec<String> = live
                    .iter()
                    .map(|(ip, left)| format!("{ip} expires {}s", left.max(&1)))
                    .collect();
                let _ = writeln!(t, "\t\telements = {{ {} }}", live.join(", "));
            }
            let _ = writeln!(t, "\t}}");
        }
        for map in &r.maps {
            let _ = writeln!(
                t,
                "\tmap {} {{\n\t\t{}\n\t\telements = {{ {} }}\n\t}}",
                map.name,
                map.typeof_,
                map.arms.join(", ")
            );
        }
        for chain in &r.chains {
            let _ = writeln!(t, "\tchain {} {{", chain.name);
            for rule in &chain.rules {
                let _ = writeln!(t, "\t\t{rule}");
            }
            let _ = writeln!(t, "\t}}");
        }
        for e in r.elements {
            elements.entry(e.map).or_default().insert(e.text());
        }
    }
    // The dispatch maps with their elements inside the block: nft creates
    // a block's chains before its sets and maps, so the chains named exist.
    // (`add element` commands after the block would also make libnftables
    // fetch every set of the old table from the kernel first.)
    let dispatch = |key: &str| format!("type {key} : verdict");
    for (kind, name, decl) in [
        (
            "map",
            SERVICE_IPS,
            dispatch("ipv4_addr . inet_proto . inet_service"),
        ),
        (
            "map",
            NO_ENDPOINT_SERVICES,
            dispatch("ipv4_addr . inet_proto . inet_service"),
        ),
        (
            "map",
            SERVICE_NODEPORTS,
            dispatch("inet_proto . inet_service"),
        ),
        (
            "map",
            NO_ENDPOINT_NODEPORTS,
            dispatch("inet_proto . inet_service"),
        ),
        ("set", HAIRPIN_SET, HAIRPIN_TYPE.to_string()),
    ] {
        let _ = writeln!(t, "\t{kind} {name} {{\n\t\t{decl}");
        if let Some(elems) = elements.get(name).filter(|e| !e.is_empty()) {
            let elems: Vec<&str> = elems.iter().map(String::as_str).collect();
            let _ = writeln!(t, "\t\telements = {{ {} }}", elems.join(", "));
        }
        let _ = writeln!(t, "\t}}");
    }
    let _ = writeln!(t, "}}");
    FullTable { text: t, rules }
}

/// A transaction changing what `old` put into the table into what `new`
/// needs (both the rendering of one Service's ports; either may be empty).
/// Chains that are no longer used are flushed and returned: they can only
/// be deleted once no map element points at them any more, in a later
/// transaction (the kernel notices unreferenced chains a bit later on
/// kernels before 6.2; upstream waits too).
pub fn partial(old: &Rendered, new: &Rendered, t: &mut String) -> Vec<String> {
    let old_elems: BTreeMap<(&str, &str), &Element> = old
        .elements
        .iter()
        .map(|e| ((e.map, e.key.as_str()), e))
        .collect();
    let new_elems: BTreeMap<(&str, &str), &Element> = new
        .elements
        .iter()
        .map(|e| ((e.map, e.key.as_str()), e))
        .collect();
    for ((map, key), value) in &old_elems {
        if new_elems.get(&(*map, *key)) != Some(value) {
            let _ = writeln!(t, "delete element ip {TABLE} {map} {{ {key} }}");
        }
    }
    let old_sets: BTreeSet<&str> = old.sets.iter().map(|s| s.name.as_str()).collect();
    let new_sets: BTreeSet<&str> = new.sets.iter().map(|s| s.name.as_str()).collect();
    for set in &new.sets {
        if !old_sets.contains(set.name.as_str()) {
            let _ = writeln!(
                t,
                "add set ip {TABLE} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}",
                set.name, set.timeout
            );
        }
    }
    let old_maps: BTreeMap<&str, &Vec<String>> = old
        .maps
        .iter()
        .map(|m| (m.name.as_str(), &m.arms))
        .collect();
    let new_maps: BTreeSet<&str> = new.maps.iter().map(|m| m.name.as_str()).collect();
    for map in &new.maps {
        if !old_maps.contains_key(map.name.as_str()) {
            let _ = writeln!(t, "add map ip {TABLE} {} {{ {}; }}", map.name, map.typeof_);
        }
    }
    let old_chains: BTreeMap<&str, &Vec<String>> = old
        .chains
        .iter()
        .map(|c| (c.name.as_str(), &c.rules))
        .collect();
    for chain in &new.chains {
        if old_chains.get(chain.name.as_str()) == Some(&&chain.rules) {
            continue;
        }
        let _ = writeln!(t, "add chain ip {TABLE} {}", chain.name);
        let _ = writeln!(t, "flush chain ip {TABLE} {}", chain.name);
        for rule in &chain.rules {
            let _ = writeln!(t, "add rule ip {TABLE} {} {rule}", chain.name);
        }
    }
    // Verdict maps point at the endpoint chains, which exist by now.
    for map in &new.maps {
        if old_maps.get(map.name.as_str()) != Some(&&map.arms) {
            let _ = writeln!(t, "flush map ip {TABLE} {}", map.name);
            let _ = writeln!(
                t,
                "add element ip {TABLE} {} {{ {} }}",
                map.name,
                map.arms.join(", ")
            );
        }
    }
    let new_chain_names: BTreeSet<&str> = new.chains.iter().map(|c| c.name.as_str()).collect();
    let mut stale = Vec::new();
    for chain in &old.chains {
        if !new_chain_names.contains(chain.name.as_str()) {
            let _ = writeln!(t, "flush chain ip {TABLE} {}", chain.name);
            stale.push(chain.name.clone());
        }
    }
    for set in &old.sets {
        if !new_sets.contains(set.name.as_str()) {
            let _ = writeln!(t, "delete set ip {TABLE} {}", set.name);
        }
    }
    for map in &old.maps {
        if !new_maps.contains(map.name.as_str()) {
            let _ = writeln!(t, "delete map ip {TABLE} {}", map.name);
        }
    }
    for ((map, key), e) in &new_elems {
        if old_elems.get(&(*map, *key)) != Some(e) {
            let _ = writeln!(t, "add element ip {TABLE} {map} {{ {} }}", e.text());
        }
    }
    stale
}

/// The rendering of all ports of one Service.
pub fn render_all(ports: &[ServicePort], settings: &Settings) -> Rendered {
    let mut r = Rendered::default();
    for sp in ports {
        r.extend(render(sp, settings));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, ServiceName};

    fn port(name: &str, ip: &str, eps: &[&str]) -> ServicePort {
        ServicePort {
            service: ServiceName::new("default", name),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
            cluster_ip: ip.parse().unwrap(),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_timeout: None,
            endpoints: eps
                .iter()
                .map(|e| Endpoint {
                    ip: e.parse().unwrap(),
                    port: 8080,
                })
                .collect(),
        }
    }

    fn settings() -> Settings {
        Settings {
            cluster_cidr: Some("10.244.0.0/16".into()),
            nodeport_addresses: NodePortAddresses::All,
        }
    }

    #[test]
    fn names_look_like_upstreams() {
        let sp = port("web", "10.96.0.20", &["10.244.1.2"]);
        let svc = service_chain(&sp);
        assert!(svc.starts_with("service-"), "{svc}");
        assert!(svc.ends_with("-default/web/tcp/http"), "{svc}");
        assert_eq!(
            svc.len(),
            "service-".len() + 8 + "-default/web/tcp/http".len()
        );
        let ep = endpoint_chain(&sp, &sp.endpoints[0]);
        assert!(
            ep.ends_with("-default/web/tcp/http__10.244.1.2/8080"),
            "{ep}"
        );
        // Deterministic, and the timeout changes an affinity set's name.
        assert_eq!(svc, service_chain(&sp));
        assert_ne!(
            affinity_set(&sp, &sp.endpoints[0], 10),
            affinity_set(&sp, &sp.endpoints[0], 20)
        );
    }

    #[test]
    fn a_service_with_endpoints() {
        let mut sp = port("web", "10.96.0.20", &["10.244.1.2", "10.244.2.2"]);
        sp.node_port = Some(30080);
        let table = full([&sp], &settings(), &AffinityEntries::new());
        let text = table.text;
        let svc = service_chain(&sp);
        let ext = external_chain(&sp);
        assert!(text.starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
        let lb = lb_map(&sp);
        // Without affinity the map gives the DNAT target: no endpoint chains.
        assert!(text.contains(&format!(
            "\t\tip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat ip addr . port to numgen random mod 2 map @{lb}\n"
        )));
        assert!(text.contains(&format!(
            "map {lb} {{\n\t\ttypeof numgen random mod 1 : ip daddr . tcp dport\n\t\telements = {{ 0 : 10.244.1.2 . 8080, 1 : 10.244.2.2 . 8080 }}"
        )));
        assert!(!text.contains("chain endpoint-"));
        // Hairpin: an endpoint sent to itself is masqueraded.
        assert!(text.contains(
            "set hairpin-endpoints {\n\t\ttypeof ip saddr . ip daddr . ct original ip daddr\n\t\telements = { 10.244.1.2 . 10.244.1.2 . 10.96.0.20, 10.244.2.2 . 10.244.2.2 . 10.96.0.20 }"
        ));
        assert!(text.contains(
            "ip saddr . ip daddr . ct original ip daddr @hairpin-endpoints jump mark-for-masquerade"
        ));
        assert!(text.contains(&format!(
            "map service-ips {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = {{ 10.96.0.20 . tcp . 80 : goto {svc} }}"
        )));
        assert!(text.contains(&format!(
            "map service-nodeports {{\n\t\ttype inet_proto . inet_service : verdict\n\t\telements = {{ tcp . 30080 : goto {ext} }}"
        )));
        assert!(text.contains(&format!(
            "chain {ext} {{\n\t\tjump mark-for-masquerade\n\t\tgoto {svc}\n"
        )));
        assert!(text.contains("fib daddr type local ip daddr != 127.0.0.0/8"));
        assert!(text.contains(
            "map no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t}"
        ));
        assert!(!text.contains("add element"));
        assert_eq!(render(&sp, &settings()).rule_count(), 2 + 2);
        assert_eq!(table.rules, base_rule_count(&settings()) + 4);
    }

    #[test]
    fn two_ports_share_hairpin_elements() {
        let a = port("web", "10.96.0.20", &["10.244.1.2"]);
        let mut b = a.clone();
        b.port = 443;
        b.port_name = "https".into();
        let text = full([&a, &b], &settings(), &AffinityEntries::new()).text;
        assert_eq!(
            text.matches("10.244.1.2 . 10.244.1.2 . 10.96.0.20").count(),
            1
        );
        assert_ne!(lb_map(&a), lb_map(&b));
    }

    #[test]
    fn a_service_without_endpoints_is_rejected() {
        let mut sp = port("lonely", "10.96.0.30", &[]);
        sp.protocol = Protocol::Udp;
        sp.node_port = Some(30053);
        let text = full(
            [&sp],
            &Settings {
                cluster_cidr: None,
                nodeport_addresses: NodePortAddresses::Only(vec!["10.250.0.11".parse().unwrap()]),
            },
            &AffinityEntries::new(),
        )
        .text;
        assert!(text.contains("elements = { 10.96.0.30 . udp . 80 : goto reject-chain }"));
        assert!(text.contains("elements = { udp . 30053 : goto reject-chain }"));
        assert!(text.contains("elements = { 10.250.0.11 }"));
        assert!(
            text.contains("ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
        );
        assert!(text.contains(
            "map service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t}"
        ));
        assert!(!text.contains("chain service-"));
    }

    #[test]
    fn affinity_sets_and_carried_entries() {
        let mut sp = port("sticky", "10.96.0.40", &["10.244.1.2"]);
        sp.affinity_timeout = Some(60);
        let set = affinity_set(&sp, &sp.endpoints[0], 60);
        let mut live = AffinityEntries::new();
        live.insert(set.clone(), vec![("10.244.9.9".parse().unwrap(), 42)]);
        let text = full([&sp], &settings(), &live).text;
        assert!(text.contains(&format!("set {set} {{")));
        assert!(text.contains("timeout 60s"));
        assert!(text.contains("elements = { 10.244.9.9 expires 42s }"));
        assert!(text.contains(&format!("update @{set} {{ ip saddr }}")));
        assert!(text.contains(&format!(
            "ip saddr @{set} goto {}",
            endpoint_chain(&sp, &sp.endpoints[0])
        )));
    }

    #[test]
    fn partial_touches_only_what_changed() {
        let s = settings();
        let old = port("web", "10.96.0.20", &["10.244.1.2", "10.244.2.2"]);
        let new = port("web", "10.96.0.20", &["10.244.1.2", "10.244.3.2"]);
        let mut t = String::new();
        let stale = partial(&render(&old, &s), &render(&new, &s), &mut t);
        assert!(stale.is_empty());
        // Same number of endpoints: the service chain stays as it is; the
        // map is refilled and the hairpin elements follow.
        let lb = lb_map(&new);
        assert_eq!(
            t,
            format!(
                "delete element ip kube-proxy hairpin-endpoints {{ 10.244.2.2 . 10.244.2.2 . 10.96.0.20 }}\n\
                 flush map ip kube-proxy {lb}\n\
                 add element ip kube-proxy {lb} {{ 0 : 10.244.1.2 . 8080, 1 : 10.244.3.2 . 8080 }}\n\
                 add element ip kube-proxy hairpin-endpoints {{ 10.244.3.2 . 10.244.3.2 . 10.96.0.20 }}\n"
            )
        );

        // One more endpoint: the service chain's modulus changes.
        let more = port(
            "web",
            "10.96.0.20",
            &["10.244.1.2", "10.244.3.2", "10.244.4.2"],
        );
        let mut t = String::new();
        partial(&render(&new, &s), &render(&more, &s), &mut t);
        assert!(t.contains(&format!(
            "flush chain ip kube-proxy {}\n",
            service_chain(&more)
        )));
        assert!(t.contains("numgen random mod 3 map"));

        // Losing every endpoint: the element moves to the reject map.
        let empty = port("web", "10.96.0.20", &[]);
        let mut t = String::new();
        let stale = partial(&render(&new, &s), &render(&empty, &s), &mut t);
        assert_eq!(stale, vec![service_chain(&new)]);
        assert!(t.contains("delete element ip kube-proxy service-ips { 10.96.0.20 . tcp . 80 }"));
        assert!(t.contains(
            "add element ip kube-proxy no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-chain }"
        ));
        let flush_svc = t
            .find(&format!(
                "flush chain ip kube-proxy {}",
                service_chain(&new)
            ))
            .unwrap();
        let delete_map = t.find(&format!("delete map ip kube-proxy {lb}")).unwrap();
        assert!(flush_svc < delete_map, "{t}");

        // Affinity switched on: endpoint chains and a verdict map of its own.
        let mut sticky = new.clone();
        sticky.affinity_timeout = Some(60);
        let mut t = String::new();
        let stale = partial(&render(&new, &s), &render(&sticky, &s), &mut t);
        assert!(stale.is_empty());
        let vmap = lb_map(&sticky);
        assert_ne!(vmap, lb);
        let add_map = t
            .find(&format!(
                "add map ip kube-proxy {vmap} {{ typeof numgen random mod 1 : verdict; }}"
            ))
            .unwrap();
        let ep = endpoint_chain(&sticky, &sticky.endpoints[0]);
        let add_chain = t.find(&format!("add chain ip kube-proxy {ep}\n")).unwrap();
        let fill = t
            .find(&format!(
                "add element ip kube-proxy {vmap} {{ 0 : goto {ep}"
            ))
            .unwrap();
        let delete_old = t.find(&format!("delete map ip kube-proxy {lb}")).unwrap();
        assert!(
            add_map < add_chain && add_chain < fill && fill < delete_old,
            "{t}"
        );

        // A deleted Service.
        let mut t = String::new();
        let stale = partial(&render(&sticky, &s), &Rendered::default(), &mut t);
        assert_eq!(stale.len(), 3);
        assert!(t.contains("delete element ip kube-proxy service-ips"));
        assert!(t.contains("delete element ip kube-proxy hairpin-endpoints"));
        assert!(t.contains("delete set ip kube-proxy affinity-"));
        assert!(!t.contains("add "));
    }

    #[test]
    fn partial_replaces_affinity_sets_when_the_timeout_changes() {
        let s = settings();
        let mut old = port("sticky", "10.96.0.40", &["10.244.1.2"]);
        old.affinity_timeout = Some(60);
        let mut new = old.clone();
        new.affinity_timeout = Some(120);
        let mut t = String::new();
        partial(&render(&old, &s), &render(&new, &s), &mut t);
        let old_set = affinity_set(&old, &old.endpoints[0], 60);
        let new_set = affinity_set(&new, &new.endpoints[0], 120);
        let add = t.find(&format!("add set ip kube-proxy {new_set}")).unwrap();
        let flush = t.find("flush chain").unwrap();
        let delete = t
            .find(&format!("delete set ip kube-proxy {old_set}"))
            .unwrap();
        assert!(add < flush && flush < delete, "{t}");
    }

    #[test]
    fn names_from_bad_data_stay_identifiers() {
        let mut sp = port("web", "10.96.0.20", &["10.244.1.2"]);
        sp.port_name = "x }; flush ruleset; {".into();
        sp.service.namespace = "n".repeat(300);
        for name in [service_chain(&sp), endpoint_chain(&sp, &sp.endpoints[0])] {
            assert!(name.len() <= 256, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c)),
                "{name}"
            );
        }
        let mut other = sp.clone();
        other.port_name = "x }; flush ruleset; (".into();
        assert_ne!(service_chain(&sp), service_chain(&other));
    }

    #[test]
    fn base32_matches_rfc4648() {
        // "foobar" -> MZXW6YTBOI...
        assert_eq!(base32_8(b"foobar"), "MZXW6YTB");
    }
}
