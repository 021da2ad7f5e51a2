//! The bench's simulated hosts: real agents (`plane::agent`) with the sim driver, all in
//! this process, each on a NATS connection of its own as a real agent would be.

use std::net::Ipv4Addr;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::bus::NatsBus;
use crate::cli::BusArgs;
use crate::cli::services::{sim_container_ips, sim_seed};
use crate::plane::agent::sim::{SimConfig, SimDriver};
use crate::plane::agent::{self, AgentConfig, AgentHandle};
use crate::plane::sandbox::heartbeat_period_for;

/// Hosts big enough never to be the limit: the bench measures the plane, not packing.
const CORES: u32 = 256;
const MEMORY_MB: u64 = 1024 * 1024;
/// Connections opened at once while the fleet starts.
const CONNECTING: usize = 32;
/// Each host's /24 gives its containers .31 to .250, less the host's own address.
pub const INSTANCES_PER_HOST_MAX: u32 = 200;

/// Host `i`'s id, AZ and address. Addresses are on loopback (127.b.c.1) and never sent to:
/// sim containers have no network.
pub fn host(i: u32) -> (String, String, Ipv4Addr) {
    let ip = Ipv4Addr::new(127, (1 + i / 250) as u8, (1 + i % 250) as u8, 1);
    (format!("h-{:05}", i + 1), format!("az-{}", 1 + i % 2), ip)
}

/// The running agents; dropping the fleet stops them and closes their connections.
pub struct SimFleet {
    agents: Vec<(AgentHandle, NatsBus)>,
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        for (agent, _) in &self.agents {
            agent.stop();
        }
    }
}

/// Starts `hosts` agents on `url`.
pub async fn start(bus: &BusArgs, url: &str, hosts: u32, speed: f64) -> Result<SimFleet, String> {
    let period = heartbeat_period_for(hosts as usize);
    let started = futures_util::stream::iter(0..hosts)
        .map(|i| async move {
            let (id, az, ip) = host(i);
            let args = BusArgs { nats: Some(url.to_string()), ..bus.clone() };
            let conn = args.connect(&format!("bench/agent/{id}")).await?;
            let driver = SimDriver::new(SimConfig {
                seed: sim_seed(&id),
                cpu_cores: CORES,
                memory_mb: MEMORY_MB,
                container_ips: sim_container_ips(ip),
                speed,
                crashes_per_hour: 0.0,
            });
            let config = AgentConfig {
                host_id: id.clone(),
                hostname: id.clone(),
                ip: ip.to_string(),
                az,
                tags: vec![],
                heartbeat_period: period,
                poll_interval: std::time::Duration::from_millis(250),
                metrics: None,
            };
            let handle = agent::start(Arc::new(conn.clone()), driver, config)
                .await
                .map_err(|e| format!("agent {id}: {e}"))?;
            Ok::<_, String>((handle, conn))
        })
        .buffer_unordered(CONNECTING)
        .collect::<Vec<_>>()
        .await;
    let mut fleet = SimFleet { agents: Vec::with_capacity(hosts as usize) };
    for agent in started {
        // Pushed before the error is returned, so the agents already started are stopped.
        fleet.agents.push(agent?);
    }
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_have_distinct_ids_and_addresses_in_two_azs() {
        let all: Vec<_> = (0..10_000).map(host).collect();
        let ids: std::collections::BTreeSet<_> = all.iter().map(|h| h.0.clone()).collect();
        let ips: std::collections::BTreeSet<_> = all.iter().map(|h| h.2).collect();
        assert_eq!((ids.len(), ips.len()), (10_000, 10_000));
        assert!(
            all.iter().all(|h| h.2.is_loopback() && crate::protocol::validate::name("host id", &h.0).is_ok())
        );
        assert_eq!(all.iter().filter(|h| h.1 == "az-1").count(), 5_000);
    }
}
