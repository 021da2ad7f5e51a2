//! Where an instance is reached. Published mode: the container port on the advertise IP
//! and a host port. VLAN mode: a Docker network with IPAM (`qd-vlan-<host>`) and a static
//! address per container from the host's range, `.31` up as in the original per-host /24
//! scheme, never an address in use.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::str::FromStr;

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest, PortMap};

use super::connect;
use super::labels;

/// An IPv4 network in CIDR notation; the address is kept as given, masked on use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    fn mask(self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 network: use CIDR, e.g. 10.101.1.0/24");
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// The offset of the first container address in the host's range.
const FIRST_HOST: u32 = 31;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanConfig {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Docker network driver: `bridge` (tests), `macvlan` or `ipvlan` (a real VLAN).
    pub driver: String,
    /// The host interface a macvlan/ipvlan network sits on (`parent` option).
    pub parent: Option<String>,
}

impl VlanConfig {
    pub fn new(subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<VlanConfig, String> {
        if subnet.prefix > 26 {
            return Err(format!("subnet {subnet} is too small: containers take addresses from .31 up"));
        }
        if !subnet.contains(gateway) {
            return Err(format!("gateway {gateway} is not in subnet {subnet}"));
        }
        Ok(VlanConfig { subnet, gateway, driver: "bridge".into(), parent: None })
    }
}

pub fn network_name(host: &str) -> String {
    format!("qd-vlan-{host}")
}

/// Creates the host's VLAN network, or checks that the one already there has our subnet.
pub async fn ensure_network(docker: &Docker, host: &str, vlan: &VlanConfig) -> Result<(), String> {
    let name = network_name(host);
    match docker.inspect_network(&name, None).await {
        Ok(existing) => {
            let subnets: Vec<String> = existing
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.subnet)
                .collect();
            if subnets.iter().any(|s| s.parse::<Ipv4Net>().is_ok_and(|n| n == vlan.subnet)) {
                Ok(())
            } else {
                Err(format!(
                    "network {name} exists with subnet {} rather than {}; remove it or fix --subnet",
                    subnets.join(", "),
                    vlan.subnet
                ))
            }
        }
        Err(e) if connect::is_not_found(&e) => {
            let options: HashMap<String, String> =
                vlan.parent.iter().map(|p| ("parent".to_string(), p.clone())).collect();
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some(vlan.driver.clone()),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(vec![IpamConfig {
                        subnet: Some(vlan.subnet.to_string()),
                        gateway: Some(vlan.gateway.to_string()),
                        ..Default::default()
                    }]),
                    options: None,
                }),
                options: Some(options),
                labels: Some(HashMap::from([(labels::HOST.to_string(), host.to_string())])),
                ..Default::default()
            };
            docker
                .create_network(request)
                .await
                .map(|_| log::info!("created network {name} ({}, {})", vlan.subnet, vlan.driver))
                .map_err(|e| format!("cannot create network {name}: {}", connect::message(&e)))
        }
        Err(e) => Err(format!("cannot inspect network {name}: {}", connect::message(&e))),
    }
}

/// Addresses Docker has handed out on the network, to any container (ours or not).
pub async fn addresses_on_network(docker: &Docker, name: &str) -> Result<BTreeSet<Ipv4Addr>, String> {
    let net = docker
        .inspect_network(name, None)
        .await
        .map_err(|e| format!("cannot inspect network {name}: {}", connect::message(&e)))?;
    Ok(net
        .containers
        .unwrap_or_default()
        .values()
        .filter_map(|c| c.ipv4_address.as_deref())
        .filter_map(|a| a.split('/').next()?.parse().ok())
        .collect())
}

/// The lowest free address from `.31` up, skipping the gateway and anything in use.
pub fn pick_address(vlan: &VlanConfig, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(vlan.subnet.network()) + FIRST_HOST;
    let last = u32::from(vlan.subnet.broadcast()).checked_sub(1)?;
    (first..=last).map(Ipv4Addr::from).find(|ip| *ip != vlan.gateway && !used.contains(ip))
}

/// A port the kernel says is free on `ip` right now.
pub fn free_port(ip: Ipv4Addr) -> Result<u16, String> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on {ip}: {e}"))
}

/// Whether `ip:port` can be listened on now.
pub fn port_is_free(ip: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind((ip, port)).is_ok()
}

/// The host port Docker bound for `container_port`, from an inspect's port map.
pub fn published_port(ports: Option<&PortMap>, container_port: u16) -> Option<u16> {
    ports?
        .get(&format!("{container_port}/tcp"))?
        .as_ref()?
        .iter()
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_membership() {
        let net: Ipv4Net = "10.101.1.0/24".parse().unwrap();
        assert_eq!(net.network(), Ipv4Addr::new(10, 101, 1, 0));
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 101, 1, 255));
        assert!(net.contains(Ipv4Addr::new(10, 101, 1, 77)));
        assert!(!net.contains(Ipv4Addr::new(10, 101, 2, 1)));
        assert_eq!(net.to_string(), "10.101.1.0/24");
        for bad in ["10.1.1.0", "10.1.1.0/33", "x/24", "10.1.1/24"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_start_at_31_and_are_never_reused_while_in_use() {
        let vlan = VlanConfig::new("10.9.8.0/24".parse().unwrap(), Ipv4Addr::new(10, 9, 8, 1)).unwrap();
        let mut used = BTreeSet::new();
        let a = pick_address(&vlan, &used).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 8, 31));
        used.insert(a);
        assert_eq!(pick_address(&vlan, &used), Some(Ipv4Addr::new(10, 9, 8, 32)));
        let all: BTreeSet<Ipv4Addr> = (31..=254).map(|x| Ipv4Addr::new(10, 9, 8, x)).collect();
        assert_eq!(pick_address(&vlan, &all), None, "a full range is full");
        let gw31 = VlanConfig::new("10.9.8.0/24".parse().unwrap(), Ipv4Addr::new(10, 9, 8, 31)).unwrap();
        assert_eq!(pick_address(&gw31, &BTreeSet::new()), Some(Ipv4Addr::new(10, 9, 8, 32)));
        assert!(VlanConfig::new("10.9.8.0/24".parse().unwrap(), Ipv4Addr::new(10, 9, 9, 1)).is_err());
    }
}
