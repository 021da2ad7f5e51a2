//! The up-front check of a drain: where each instance on the host would go, planned with
//! the one scheduler against the fleet without that host, before anything moves. Pure, so
//! the controller's refusal and its tests read the same rule.

use crate::protocol::scheduler::{PlacementError, PlacementRequest, Usage, place_with};
use crate::protocol::{Fleet, HostState, Instance};

/// One planned move: the instance, and the host its replacement would go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub instance: String,
    pub app: String,
    pub to: String,
}

/// Why a host cannot be drained; nothing has moved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrainRefused {
    #[error("no host {0}")]
    UnknownHost(String),
    #[error("host {host} is {state}: a drain needs its agent to stop what it runs{hint}")]
    NotUp { host: String, state: &'static str, hint: &'static str },
    #[error("instance {instance} on {host} belongs to app {app}, which the controller does not know")]
    UnknownApp { host: String, instance: String, app: String },
    #[error("the rest of the fleet cannot hold {host}'s instances: {error}")]
    NoRoom { host: String, error: PlacementError },
}

/// Plans where every instance on `host` goes, one by one as the drain will move them
/// (in id order), each placed with what the moves before it took. The host itself gets
/// nothing: it is cordoned by then.
pub fn plan(fleet: &Fleet, host: &str) -> Result<Vec<Move>, DrainRefused> {
    let Some(h) = fleet.hosts.get(host) else {
        return Err(DrainRefused::UnknownHost(host.to_string()));
    };
    if h.state != HostState::Up {
        let hint = match h.state {
            HostState::Lost => "; the health manager places a lost host's instances again by itself",
            _ => "; try again once it is heard from",
        };
        return Err(DrainRefused::NotUp { host: host.to_string(), state: h.state.as_str(), hint });
    }
    let leaving = on_host(fleet, host);
    // The fleet as the drain leaves it: none of the host's instances counted, so the
    // spread across AZs is judged without them.
    let mut usage = Usage::of(fleet);
    for inst in &leaving {
        usage.remove(inst);
    }
    let exclude = [host.to_string()];
    let mut moves = Vec::with_capacity(leaving.len());
    for inst in leaving {
        let Some(app) = fleet.apps.get(&inst.app) else {
            return Err(DrainRefused::UnknownApp {
                host: host.to_string(),
                instance: inst.id.clone(),
                app: inst.app.clone(),
            });
        };
        let req =
            PlacementRequest { app: &app.name, count: 1, constraints: &app.constraints, exclude: &exclude };
        let to = place_with(fleet, &req, &usage)
            .map_err(|error| DrainRefused::NoRoom { host: host.to_string(), error })?
            .into_iter()
            .next()
            .unwrap_or_default();
        // What the replacement will reserve, where it will run.
        let mut placed = inst.clone();
        placed.host = to.clone();
        placed.cpu_limit = app.constraints.cpu;
        placed.mem_limit_mb = app.constraints.memory_mb;
        usage.add(&placed);
        moves.push(Move { instance: inst.id.clone(), app: app.name.clone(), to });
    }
    Ok(moves)
}

/// The instances on `host`, in the order a drain moves them.
pub fn on_host<'a>(fleet: &'a Fleet, host: &'a str) -> Vec<&'a Instance> {
    let mut leaving: Vec<&Instance> = fleet.instances_on(host).filter(|i| i.state.occupies_host()).collect();
    leaving.sort_by(|a, b| a.id.cmp(&b.id));
    leaving
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::scheduler::NoFit;
    use crate::protocol::{AppSpec, Host, HostSchedule, InstanceState};

    fn host(id: &str, az: &str, cores: u32) -> Host {
        Host::for_test(id, az, cores, 8192)
    }

    fn app(name: &str, cpu: f32) -> AppSpec {
        AppSpec::for_test(name, 1, cpu)
    }

    fn inst(id: &str, app: &str, host: &str, cpu: f32) -> Instance {
        Instance {
            id: id.into(),
            app: app.into(),
            version: "1".into(),
            index: 0,
            host: host.into(),
            ip: String::new(),
            port: 0,
            endpoint: String::new(),
            container_id: String::new(),
            state: InstanceState::Running,
            started_at: None,
            restarts: 0,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: 256,
            cpu_limit: cpu,
            last_exit: None,
        }
    }

    fn fleet(hosts: Vec<Host>, apps: Vec<AppSpec>, insts: Vec<Instance>) -> Fleet {
        let mut f = Fleet::default();
        for h in hosts {
            f.hosts.insert(h.info.id.clone(), h);
        }
        for a in apps {
            f.apps.insert(a.name.clone(), a);
        }
        for i in insts {
            f.instances.insert(i.id.clone(), i);
        }
        f
    }

    #[test]
    fn each_instance_goes_elsewhere_keeping_the_spread() {
        // web runs once in each AZ; the az1 instance's replacement goes back to az1.
        let f = fleet(
            vec![host("a1", "az1", 4), host("a2", "az1", 4), host("b1", "az2", 4)],
            vec![app("web", 0.5)],
            vec![inst("web-0", "web", "a1", 0.5), inst("web-1", "web", "b1", 0.5)],
        );
        let moves = plan(&f, "a1").expect("fits");
        assert_eq!(moves, vec![Move { instance: "web-0".into(), app: "web".into(), to: "a2".into() }]);
    }

    #[test]
    fn each_move_counts_what_the_moves_before_it_took() {
        // b1 has room for one 1-core instance, b2 for one: two moves, two hosts.
        let f = fleet(
            vec![host("a1", "az1", 4), host("b1", "az1", 1), host("b2", "az1", 1)],
            vec![app("web", 1.0)],
            vec![inst("web-0", "web", "a1", 1.0), inst("web-1", "web", "a1", 1.0)],
        );
        let mut to: Vec<String> = plan(&f, "a1").expect("fits").into_iter().map(|m| m.to).collect();
        to.sort();
        assert_eq!(to, vec!["b1", "b2"]);
    }

    #[test]
    fn a_drain_that_does_not_fit_is_refused_naming_the_app_and_why() {
        let f = fleet(
            vec![host("a1", "az1", 4), host("b1", "az1", 1)],
            vec![app("web", 1.0), app("db", 1.0)],
            vec![inst("db-0", "db", "a1", 1.0), inst("web-0", "web", "a1", 1.0)],
        );
        let err = plan(&f, "a1").unwrap_err();
        let DrainRefused::NoRoom { error, .. } = &err else { panic!("{err:?}") };
        assert_eq!(error.app, "web", "db-0 goes first and takes b1: {err}");
        assert!(matches!(error.reason, NoFit::NotEnoughCpu { .. }), "{err}");
        assert!(err.to_string().contains("cannot hold a1's instances"), "{err}");
    }

    #[test]
    fn cordoned_hosts_take_no_replacement() {
        let mut f = fleet(
            vec![host("a1", "az1", 4), host("b1", "az1", 4)],
            vec![app("web", 0.5)],
            vec![inst("web-0", "web", "a1", 0.5)],
        );
        f.hosts.get_mut("b1").expect("b1").schedule = HostSchedule::Cordoned;
        let err = plan(&f, "a1").unwrap_err();
        let DrainRefused::NoRoom { error, .. } = &err else { panic!("{err:?}") };
        assert_eq!(error.reason, NoFit::NoHostOpen, "{err}");
    }

    #[test]
    fn unknown_lost_and_stale_hosts_and_unknown_apps_are_refused_by_name() {
        let mut f = fleet(
            vec![host("a1", "az1", 4), host("b1", "az1", 4)],
            vec![],
            vec![inst("ghost-0", "ghost", "a1", 0.5)],
        );
        assert_eq!(plan(&f, "zz").unwrap_err(), DrainRefused::UnknownHost("zz".into()));
        let err = plan(&f, "a1").unwrap_err();
        assert!(matches!(err, DrainRefused::UnknownApp { .. }), "{err}");
        assert!(err.to_string().contains("ghost"), "{err}");
        f.hosts.get_mut("a1").expect("a1").state = HostState::Lost;
        let err = plan(&f, "a1").unwrap_err().to_string();
        assert!(err.contains("is lost") && err.contains("health manager"), "{err}");
        f.hosts.get_mut("a1").expect("a1").state = HostState::Stale;
        assert!(plan(&f, "a1").unwrap_err().to_string().contains("is stale"));
    }

    #[test]
    fn an_empty_host_plans_no_move() {
        let f = fleet(vec![host("a1", "az1", 4)], vec![], vec![]);
        assert_eq!(plan(&f, "a1"), Ok(vec![]));
    }
}
