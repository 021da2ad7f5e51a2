//! `drain_plan::plan` on a small fleet built from the input (hosts up or not, open,
//! cordoned or draining, in three AZs; apps with AZ, tag, CPU and memory constraints;
//! instances anywhere): never panics, and a plan moves exactly the drained host's
//! instances, each to an up host that is open, never to the drained host or a cordoned or
//! draining one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::drain_plan::{on_host, plan};
use quarterdeck::protocol::{
    AppSpec, Constraints, Fleet, Host, HostInfo, HostSchedule, HostState, Instance, InstanceState,
};

/// The input read a byte at a time, zeros once it runs out.
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    fn below(&mut self, n: u8) -> u8 {
        self.next() % n
    }
}

const AZS: [&str; 3] = ["az1", "az2", "az3"];
const TAGS: [&str; 2] = ["ssd", "gpu"];

fn host(b: &mut Bytes<'_>, n: u8) -> Host {
    let id = format!("h{n}");
    let tags = TAGS.iter().filter(|_| b.below(2) == 1).map(|t| t.to_string()).collect();
    let state = match b.below(8) {
        0 => HostState::Stale,
        1 => HostState::Lost,
        _ => HostState::Up,
    };
    let schedule = match b.below(4) {
        0 => HostSchedule::Cordoned,
        1 => HostSchedule::Draining { done: u32::from(b.below(3)), total: 3 },
        _ => HostSchedule::Open,
    };
    Host {
        info: HostInfo {
            id: id.clone(),
            hostname: id,
            ip: format!("10.0.0.{n}"),
            az: AZS[usize::from(b.below(3))].into(),
            tags,
            cpu_cores: u32::from(b.below(8)),
            memory_total_mb: 512 * u64::from(b.below(16)),
            agent_version: "fuzz".into(),
            warnings: vec![],
        },
        last_heartbeat: 0,
        state,
        metrics: Default::default(),
        unmanaged: vec![],
        schedule,
    }
}

fn app(b: &mut Bytes<'_>, n: u8) -> AppSpec {
    let azs = AZS.iter().filter(|_| b.below(4) == 0).map(|a| a.to_string()).collect();
    let tags = TAGS.iter().filter(|_| b.below(4) == 0).map(|t| t.to_string()).collect();
    AppSpec {
        name: format!("app{n}"),
        version: "1".into(),
        instances: 1,
        image: "img:1".into(),
        port: 8080,
        constraints: Constraints {
            azs,
            tags,
            cpu: f32::from(b.below(9)) * 0.25,
            memory_mb: 128 * u64::from(b.below(9)),
        },
        domain: format!("app{n}.local"),
        tags: vec![],
        run: Default::default(),
        shortfall: None,
        digest: None,
    }
}

fn instance(b: &mut Bytes<'_>, n: u8, hosts: u8, apps: u8) -> Instance {
    const STATES: [InstanceState; 8] = [
        InstanceState::Running,
        InstanceState::New,
        InstanceState::Deploying,
        InstanceState::Starting,
        InstanceState::Unhealthy,
        InstanceState::Crashed,
        InstanceState::Stopped,
        InstanceState::Removed,
    ];
    // One app more than there are: an instance of an app the controller does not know.
    let app = b.below(apps + 1);
    let cpu = f32::from(b.below(9)) * 0.25;
    Instance {
        id: format!("i{n:02}"),
        app: format!("app{app}"),
        version: "1".into(),
        index: u32::from(n),
        host: format!("h{}", b.below(hosts)),
        ip: String::new(),
        port: 0,
        endpoint: String::new(),
        container_id: String::new(),
        state: STATES[usize::from(b.below(8))],
        started_at: None,
        restarts: 0,
        cpu_pct: 0.0,
        mem_used_mb: 0,
        mem_limit_mb: 128 * u64::from(b.below(9)),
        cpu_limit: cpu,
        last_exit: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data.iter());
    let hosts = 1 + b.below(5);
    let apps = 1 + b.below(3);
    let instances = b.below(13);
    let mut fleet = Fleet::default();
    for n in 0..hosts {
        let h = host(&mut b, n);
        fleet.hosts.insert(h.info.id.clone(), h);
    }
    for n in 0..apps {
        let a = app(&mut b, n);
        fleet.apps.insert(a.name.clone(), a);
    }
    for n in 0..instances {
        let i = instance(&mut b, n, hosts, apps);
        fleet.instances.insert(i.id.clone(), i);
    }
    // Now and then a host that is not in the fleet.
    let drained = format!("h{}", b.below(hosts + 1));
    match plan(&fleet, &drained) {
        Ok(moves) => {
            let leaving: Vec<&str> = on_host(&fleet, &drained).iter().map(|i| i.id.as_str()).collect();
            let moved: Vec<&str> = moves.iter().map(|m| m.instance.as_str()).collect();
            assert_eq!(moved, leaving, "the plan moves other instances than the host's");
            for m in &moves {
                assert_ne!(m.to, drained, "{m:?} stays on the drained host");
                let to = fleet.hosts.get(&m.to).unwrap_or_else(|| panic!("{m:?} goes to no host"));
                assert!(to.schedule.accepts_placements(), "{m:?} goes to a {} host", to.schedule.label());
                assert_eq!(to.state, HostState::Up, "{m:?} goes to a host that is not up");
                assert_eq!(fleet.instances[&m.instance].app, m.app, "{m:?} names another app");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
