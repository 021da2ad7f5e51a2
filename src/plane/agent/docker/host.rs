//! Host metrics: CPU %, load and memory from sysinfo; the disk that holds Docker's data;
//! network rates from `/proc/net/dev` since the previous sample.
//!
//! Cheap with hundreds of containers: each container adds a mount and a veth, so the disk
//! is chosen once and only it is refreshed, and the network is one file read rather than a
//! walk over every interface.

use std::path::PathBuf;
use std::time::Instant;

use sysinfo::{Disks, System};

use crate::protocol::HostMetrics;

pub struct HostSampler {
    system: Option<System>,
    /// The file system under Docker's root directory (the one that fills up), by index.
    disk: Option<(Disks, usize)>,
    net: Option<(u64, u64, Instant)>,
}

const MB: u64 = 1024 * 1024;

/// Virtual interfaces whose traffic is already counted on a physical one.
fn is_virtual(name: &str) -> bool {
    name == "lo" || ["veth", "docker", "br-"].iter().any(|p| name.starts_with(p))
}

/// Received and sent bytes over the physical interfaces, from `/proc/net/dev` text.
fn net_totals(text: &str) -> (u64, u64) {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            if is_virtual(name.trim()) {
                return None;
            }
            let fields: Vec<u64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            Some((*fields.first()?, *fields.get(8)?))
        })
        .fold((0, 0), |(rx, tx), (r, t)| (rx + r, tx + t))
}

impl HostSampler {
    pub fn new(docker_root: &str) -> HostSampler {
        let mut system = System::new().ok();
        if let Some(s) = system.as_mut() {
            // The first CPU reading is a baseline; the next one gives a real percentage.
            s.refresh_cpu_usage();
        }
        let root = PathBuf::from(docker_root);
        let disk = Disks::new_with_refreshed_list().ok().and_then(|disks| {
            // The mount point that is the longest prefix of Docker's root holds its data.
            let keep = disks
                .iter()
                .enumerate()
                .filter(|(_, d)| root.starts_with(d.mount_point()))
                .max_by_key(|(_, d)| d.mount_point().as_os_str().len())
                .map(|(i, _)| i)?;
            Some((disks, keep))
        });
        HostSampler { system, disk, net: None }
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
        if let Some(d) = self.disk.as_mut().and_then(|(disks, i)| disks.get_mut(*i)) {
            d.refresh();
            m.disk_total_mb = d.total_space() / MB;
            m.disk_used_mb = d.total_space().saturating_sub(d.available_space()) / MB;
        }
        if let Ok(text) = std::fs::read_to_string("/proc/net/dev") {
            let (rx, tx) = net_totals(&text);
            let now = Instant::now();
            if let Some((prx, ptx, at)) = self.net {
                let secs = now.duration_since(at).as_secs_f64().max(0.001);
                m.net_rx_bps = (rx.saturating_sub(prx) as f64 / secs) as u64;
                m.net_tx_bps = (tx.saturating_sub(ptx) as f64 / secs) as u64;
            }
            self.net = Some((rx, tx, now));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev_counts_physical_interfaces_only() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 900 9 0 0 0 0 0 0 900 9 0 0 0 0 0 0\n  \
             eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n\
             veth12ab: 50 1 0 0 0 0 0 0 60 1 0 0 0 0 0 0\n\
             docker0: 70 1 0 0 0 0 0 0 80 1 0 0 0 0 0 0\n";
        assert_eq!(net_totals(text), (1000, 2000));
    }
}
