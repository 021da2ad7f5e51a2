//! Host metrics from sysinfo: CPU %, load, memory, the disk that holds Docker's data, and
//! network rates since the previous sample.

use std::path::PathBuf;
use std::time::Instant;

use sysinfo::{Disks, Networks, System};

use crate::protocol::HostMetrics;

pub struct HostSampler {
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
    /// Docker's root directory: the disk that fills up is the one under it.
    docker_root: PathBuf,
    last_net: Instant,
}

const MB: u64 = 1024 * 1024;

/// Virtual interfaces whose traffic is already counted on a physical one.
fn is_virtual(name: &str) -> bool {
    name == "lo" || ["veth", "docker", "br-"].iter().any(|p| name.starts_with(p))
}

impl HostSampler {
    pub fn new(docker_root: &str) -> HostSampler {
        let mut system = System::new().ok();
        if let Some(s) = system.as_mut() {
            // The first CPU reading is a baseline; the next one gives a real percentage.
            s.refresh_cpu_usage();
        }
        HostSampler {
            system,
            disks: Disks::new_with_refreshed_list().ok(),
            networks: Networks::new_with_refreshed_list().ok(),
            docker_root: PathBuf::from(docker_root),
            last_net: Instant::now(),
        }
    }

    pub fn sample(&mut self) -> HostMetrics {
        let mut m = HostMetrics::default();
        if let Some(s) = self.system.as_mut() {
            s.refresh_cpu_usage();
            s.refresh_memory();
            m.cpu_pct = s.global_cpu_usage();
            m.mem_total_mb = s.total_memory() / MB;
            m.mem_used_mb = s.used_memory() / MB;
        }
        if let Ok(load) = System::load_average() {
            (m.load1, m.load5, m.load15) = (load.one as f32, load.five as f32, load.fifteen as f32);
        }
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            // The mount point that is the longest prefix of Docker's root holds its data.
            let disk = disks
                .iter()
                .filter(|d| self.docker_root.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len());
            if let Some(d) = disk {
                m.disk_total_mb = d.total_space() / MB;
                m.disk_used_mb = d.total_space().saturating_sub(d.available_space()) / MB;
            }
        }
        if let Some(nets) = self.networks.as_mut() {
            nets.refresh(true);
            let secs = self.last_net.elapsed().as_secs_f64().max(0.001);
            self.last_net = Instant::now();
            let physical = nets.iter().filter(|(name, _)| !is_virtual(&name.to_string_lossy()));
            let (rx, tx) = physical.fold((0u64, 0u64), |(rx, tx), (_, d)| (rx + d.received(), tx + d.transmitted()));
            m.net_rx_bps = (rx as f64 / secs) as u64;
            m.net_tx_bps = (tx as f64 / secs) as u64;
        }
        m
    }
}
