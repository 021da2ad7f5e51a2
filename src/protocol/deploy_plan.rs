//! The deploy planner: for a fleet and a deploy, the steps the controller takes, in order
//! (which new instances start, which old instance each one replaces, what is retired), and
//! where `scheduler` places each new instance as those steps run. Pure. The controller's
//! deploy carries out `steps`; the cockpit's deploy preview shows `plan`, so the preview
//! promises what the controller does.
//!
//! The order, by mode:
//! - **scale** (no instance of another version): the lowest free indexes start side by
//!   side; in a scale down, the instances past the count (the highest indexes) go;
//! - **all**: every new instance starts at once; when all are healthy every earlier
//!   instance goes (the old version by index, then earlier copies of this version);
//! - **rolling**: one new instance, healthy, then the old instance with the lowest index;
//!   and so on; old instances left over (a scale down) and earlier copies of this version
//!   go at the end.
//!
//! Instances are taken in index order, ties by id: never in id order alone, since
//! `web-10-…` sorts before `web-2-…`.

use crate::protocol::scheduler::{PlacementError, PlacementRequest, Usage, place_with};
use crate::protocol::{AppSpec, Constraints, Fleet, Instance, InstanceState, Strategy};

/// What is deployed: the app's desired spec as far as placement goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub app: &'a str,
    pub version: &'a str,
    pub instances: u32,
    pub constraints: &'a Constraints,
    pub strategy: Strategy,
}

impl<'a> Target<'a> {
    /// The deploy of `app`'s desired spec.
    pub fn of(app: &'a AppSpec, strategy: Strategy) -> Target<'a> {
        Target {
            app: &app.name,
            version: &app.version,
            instances: app.instances,
            constraints: &app.constraints,
            strategy,
        }
    }

    /// A new instance as placed, before any agent has it: what it reserves on its host is
    /// the app's constraints. The controller records this; the plan counts it.
    pub fn new_instance(&self, id: String, index: u32, host: &str, port: u16) -> Instance {
        Instance {
            id,
            app: self.app.to_string(),
            version: self.version.to_string(),
            index,
            host: host.to_string(),
            ip: String::new(),
            port,
            endpoint: String::new(),
            container_id: String::new(),
            state: InstanceState::New,
            started_at: None,
            restarts: 0,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: self.constraints.memory_mb,
            cpu_limit: self.constraints.cpu,
            last_exit: None,
        }
    }
}

/// How the new instances replace what runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every instance already runs this version: start the missing, retire the extra.
    Scale,
    /// A new version, every new instance at once; the old retired when all are healthy.
    All,
    /// A new version, one new instance at a time, each followed by one old retired.
    Rolling,
}

/// One step of a deploy.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Place a new instance with this index, start it and wait until it is healthy.
    Start { index: u32 },
    /// Take an instance out: routes, container, record.
    Retire {
        /// Boxed: a step list of thousands stays small when most are starts.
        instance: Box<Instance>,
        /// The index of the new instance it makes room for (a rolling deploy's pairs).
        replaced_by: Option<u32>,
    },
}

/// The steps of a deploy and their placement on the fleet as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPlan {
    pub mode: Mode,
    pub steps: Vec<Step>,
    /// The host of each `Start`, in step order, as far as they fit.
    pub placements: Vec<String>,
    /// The first start that does not fit, counted over the whole deploy.
    pub no_fit: Option<PlacementError>,
    /// What the instances take of each host once every step is done (meaningful when
    /// everything fits).
    pub after: Usage,
}

/// The steps, in the order the controller takes them.
pub fn steps(fleet: &Fleet, target: &Target<'_>) -> (Mode, Vec<Step>) {
    steps_replacing(fleet, target, false)
}

/// `steps`, and with `all` every instance is replaced as if it ran another version: the
/// same version with another environment (a container's is fixed when it is created).
pub fn steps_replacing(fleet: &Fleet, target: &Target<'_>, all: bool) -> (Mode, Vec<Step>) {
    let (mut old, mut current): (Vec<&Instance>, Vec<&Instance>) =
        fleet.instances_of(target.app).partition(|i| all || i.version != target.version);
    old.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
    current.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
    let desired = target.instances as usize;
    let retire = |i: &Instance, replaced_by| Step::Retire { instance: Box::new(i.clone()), replaced_by };
    let start = |index| Step::Start { index };

    if old.is_empty() {
        let used: Vec<u32> = current.iter().map(|i| i.index).collect();
        let missing = free_indexes(&used, desired.saturating_sub(current.len()));
        let mut steps: Vec<Step> = missing.into_iter().map(start).collect();
        steps.extend(current.iter().skip(desired).map(|i| retire(i, None)));
        return (Mode::Scale, steps);
    }
    if target.strategy == Strategy::All {
        let mut steps: Vec<Step> = free_indexes(&[], desired).into_iter().map(start).collect();
        steps.extend(old.iter().chain(current.iter()).map(|i| retire(i, None)));
        return (Mode::All, steps);
    }
    let mut steps = Vec::with_capacity(desired * 2 + old.len() + current.len());
    let mut old = old.into_iter();
    for index in free_indexes(&[], desired) {
        steps.push(start(index));
        if let Some(prev) = old.next() {
            steps.push(retire(prev, Some(index)));
        }
    }
    steps.extend(old.chain(current).map(|i| retire(i, None)));
    (Mode::Rolling, steps)
}

/// The steps, and where each new instance goes as they run: `usage` is what the fleet's
/// instances take now (`Usage::of`, or the controller's own).
pub fn plan(fleet: &Fleet, usage: &Usage, target: &Target<'_>) -> DeployPlan {
    let (mode, steps) = steps(fleet, target);
    // A refusal counts over the whole deploy, not the one instance placed at a time.
    let wanted = steps.iter().filter(|s| matches!(s, Step::Start { .. })).count() as u32;
    let mut after = usage.clone();
    let mut placements = Vec::new();
    let mut no_fit = None;
    for step in &steps {
        match step {
            Step::Start { index } => {
                let req = PlacementRequest {
                    app: target.app,
                    count: 1,
                    constraints: target.constraints,
                    exclude: &[],
                };
                match place_with(fleet, &req, &after) {
                    Ok(hosts) => {
                        let host = hosts.into_iter().next().unwrap_or_default();
                        after.add(&target.new_instance(String::new(), *index, &host, 0));
                        placements.push(host);
                    }
                    Err(e) => {
                        no_fit = Some(PlacementError { wanted, placed: placements.len() as u32, ..e });
                        break;
                    }
                }
            }
            Step::Retire { instance, .. } => after.remove(instance),
        }
    }
    DeployPlan { mode, steps, placements, no_fit, after }
}

/// The `n` lowest indexes not in `used`.
pub fn free_indexes(used: &[u32], n: usize) -> Vec<u32> {
    (0u32..).filter(|i| !used.contains(i)).take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Host;
    use crate::protocol::scheduler::place;

    fn host(id: &str, az: &str, tags: &[&str], cores: u32, mem: u64) -> Host {
        let mut h = Host::for_test(id, az, cores, mem);
        h.info.tags = tags.iter().map(|t| t.to_string()).collect();
        h
    }

    fn need(cpu: f32, memory_mb: u64) -> Constraints {
        Constraints { azs: vec![], tags: vec![], cpu, memory_mb }
    }

    fn target<'a>(version: &'a str, instances: u32, c: &'a Constraints, strategy: Strategy) -> Target<'a> {
        Target { app: "web", version, instances, constraints: c, strategy }
    }

    /// Puts an instance of `web` at `version` with `index` on `host`; its id ends in `k`.
    fn put(f: &mut Fleet, version: &str, index: u32, host: &str, k: usize, c: &Constraints) {
        let t = target(version, 0, c, Strategy::Rolling);
        let mut i = t.new_instance(format!("web-{index}-{k:04x}"), index, host, 8080);
        i.state = InstanceState::Running;
        f.instances.insert(i.id.clone(), i);
    }

    /// Two hosts in two AZs, and thirteen instances of web@1: even indexes on h1, odd on
    /// h2 (as the scheduler spreads them).
    fn thirteen() -> (Fleet, Constraints) {
        let mut f = Fleet::default();
        for h in [host("h1", "az1", &[], 8, 16384), host("h2", "az2", &[], 8, 16384)] {
            f.hosts.insert(h.info.id.clone(), h);
        }
        let c = need(0.5, 512);
        for index in 0..13 {
            put(&mut f, "1", index, if index % 2 == 0 { "h1" } else { "h2" }, index as usize, &c);
        }
        (f, c)
    }

    fn retired(plan: &DeployPlan) -> Vec<(&str, Option<u32>)> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::Retire { instance, replaced_by } => Some((instance.id.as_str(), *replaced_by)),
                Step::Start { .. } => None,
            })
            .collect()
    }

    /// Issue 17: the preview retired in id order, the controller in index order. Past ten
    /// instances they differ (`web-10-…` sorts before `web-2-…`), and a scale down then
    /// promised to free the wrong hosts.
    #[test]
    fn instances_go_in_index_order_not_id_order() {
        let (f, c) = thirteen();
        let mut by_id: Vec<&str> = f.instances.keys().map(String::as_str).collect();
        by_id.sort();
        assert_eq!(&by_id[..4], ["web-0-0000", "web-1-0001", "web-10-000a", "web-11-000b"]);

        // Scale down to ten: the three highest indexes go (h1, h2, h1). The old preview's
        // id order kept web-10..12 and dropped web-7, 8, 9 (h2, h1, h2).
        let down = plan(&f, &Usage::of(&f), &target("1", 10, &c, Strategy::Rolling));
        assert_eq!(down.mode, Mode::Scale);
        assert_eq!(retired(&down), [("web-10-000a", None), ("web-11-000b", None), ("web-12-000c", None)]);
        assert_eq!(down.after.taken("h1"), (2.5, 2560), "h1 keeps 0, 2, 4, 6, 8");
        assert_eq!(down.after.taken("h2"), (2.5, 2560), "h2 keeps 1, 3, 5, 7, 9");

        // A rolling deploy pairs each new instance with the old one of the same rank.
        let roll = plan(&f, &Usage::of(&f), &target("2", 13, &c, Strategy::Rolling));
        let pairs: Vec<(String, Option<u32>)> =
            retired(&roll).into_iter().map(|(id, by)| (id.to_string(), by)).collect();
        let want: Vec<(String, Option<u32>)> =
            (0..13u32).map(|i| (format!("web-{i}-{i:04x}"), Some(i))).collect();
        assert_eq!(pairs, want);
    }

    /// The same version with another environment: every instance is replaced, one new
    /// instance then the old one of its rank, as for a new version; without `all` it is a
    /// scale that changes nothing.
    #[test]
    fn replacing_all_rolls_the_same_version_instance_by_instance() {
        let (f, c) = thirteen();
        let t = target("1", 13, &c, Strategy::Rolling);
        assert_eq!(steps(&f, &t), (Mode::Scale, vec![]));
        let (mode, steps) = steps_replacing(&f, &t, true);
        assert_eq!(mode, Mode::Rolling);
        let starts = steps.iter().filter(|s| matches!(s, Step::Start { .. })).count();
        let pairs: Vec<(String, Option<u32>)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Retire { instance, replaced_by } => Some((instance.id.clone(), *replaced_by)),
                Step::Start { .. } => None,
            })
            .collect();
        let want: Vec<(String, Option<u32>)> =
            (0..13u32).map(|i| (format!("web-{i}-{i:04x}"), Some(i))).collect();
        assert_eq!((starts, pairs), (13, want));
        let all = target("1", 13, &c, Strategy::All);
        assert_eq!(steps_replacing(&f, &all, true).0, Mode::All);
    }

    /// The wizard's preview places with the one scheduler: a cordoned host gets nothing,
    /// and with every host cordoned the preview says why nothing fits.
    #[test]
    fn the_preview_respects_cordons() {
        use crate::protocol::HostSchedule;
        let mut f = Fleet::default();
        for h in [host("h1", "az1", &[], 8, 16384), host("h2", "az2", &[], 8, 16384)] {
            f.hosts.insert(h.info.id.clone(), h);
        }
        f.hosts.get_mut("h2").expect("h2").schedule = HostSchedule::Cordoned;
        let c = need(0.5, 512);
        let p = plan(&f, &Usage::of(&f), &target("1", 2, &c, Strategy::Rolling));
        assert_eq!(p.placements, vec!["h1", "h1"], "the spread would have used h2");
        assert!(p.no_fit.is_none());
        f.hosts.get_mut("h1").expect("h1").schedule = HostSchedule::Draining { done: 0, total: 1 };
        let p = plan(&f, &Usage::of(&f), &target("1", 2, &c, Strategy::Rolling));
        assert!(p.placements.is_empty(), "{:?}", p.placements);
        assert!(format!("{:?}", p.no_fit).contains("NoHostOpen"), "{:?}", p.no_fit);
    }

    #[test]
    fn each_mode_has_its_order() {
        let mut f = Fleet::default();
        f.hosts.insert("h1".into(), host("h1", "az1", &[], 16, 32768));
        let c = need(0.5, 512);
        // Three of the old version and, from a failed roll, one of the new.
        for (index, k) in [(2, 0), (0, 1), (1, 2)] {
            put(&mut f, "1", index, "h1", k, &c);
        }
        put(&mut f, "2", 0, "h1", 3, &c);

        let roll = plan(&f, &Usage::of(&f), &target("2", 2, &c, Strategy::Rolling));
        assert_eq!(roll.mode, Mode::Rolling);
        let start = |index| Step::Start { index };
        let kinds: Vec<String> = roll
            .steps
            .iter()
            .map(|s| match s {
                Step::Start { index } => format!("start {index}"),
                Step::Retire { instance, replaced_by } => {
                    format!("retire {} for {replaced_by:?}", instance.id)
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "start 0",
                "retire web-0-0001 for Some(0)",
                "start 1",
                "retire web-1-0002 for Some(1)",
                // The old one left over (a scale down), then the earlier copy of 2.
                "retire web-2-0000 for None",
                "retire web-0-0003 for None",
            ]
        );

        let all = plan(&f, &Usage::of(&f), &target("2", 2, &c, Strategy::All));
        assert_eq!(all.mode, Mode::All);
        assert_eq!(all.steps[..2], [start(0), start(1)]);
        assert_eq!(
            retired(&all),
            [("web-0-0001", None), ("web-1-0002", None), ("web-2-0000", None), ("web-0-0003", None)]
        );
        assert_eq!(all.after.taken("h1"), (1.0, 1024));

        // Same version, scaled up: the lowest free indexes, side by side.
        let mut same = Fleet::default();
        same.hosts.insert("h1".into(), host("h1", "az1", &[], 16, 32768));
        put(&mut same, "1", 1, "h1", 0, &c);
        put(&mut same, "1", 3, "h1", 1, &c);
        let up = plan(&same, &Usage::of(&same), &target("1", 4, &c, Strategy::All));
        assert_eq!(up.mode, Mode::Scale);
        assert_eq!(up.steps, [start(0), start(2)]);
        assert_eq!(up.placements, ["h1", "h1"]);
    }

    #[test]
    fn a_start_that_does_not_fit_is_counted_over_the_whole_deploy() {
        let mut f = Fleet::default();
        f.hosts.insert("h1".into(), host("h1", "az1", &[], 3, 8192));
        let c = need(0.5, 512);
        for index in 0..4 {
            put(&mut f, "1", index, "h1", index as usize, &c);
        }
        // Rolling needs room for one more, and frees one after each new instance: it fits.
        let roll = plan(&f, &Usage::of(&f), &target("2", 4, &c, Strategy::Rolling));
        assert_eq!(roll.no_fit, None);
        assert_eq!(roll.placements, ["h1"; 4]);
        // Twice the size: the first fits, and one old one frees too little for the next.
        let big = need(1.0, 512);
        let roll = plan(&f, &Usage::of(&f), &target("2", 4, &big, Strategy::Rolling));
        let err = roll.no_fit.expect("no room for the second");
        assert_eq!((err.wanted, err.placed), (4, 1), "{err}");
        assert_eq!(roll.placements, ["h1"]);
        // All at once: nothing is freed until every new one runs.
        let mut f2 = f.clone();
        f2.hosts.insert("h2".into(), host("h2", "az2", &[], 1, 8192));
        let all = plan(&f2, &Usage::of(&f2), &target("2", 5, &c, Strategy::All));
        let err = all.no_fit.expect("room for four of five");
        assert_eq!((err.wanted, err.placed), (5, 4), "{err}");
        assert!(err.to_string().starts_with("cannot place 5 instance(s) of web (only 4 fit)"), "{err}");
    }

    /// A small deterministic generator, so the property test needs no crate.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n.max(1)
        }
        fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
            &v[self.below(v.len() as u64) as usize]
        }
    }

    /// For fleets and deploys of every kind (AZs, tags, mixed versions, duplicate indexes,
    /// other apps, scale up and down, both strategies): replaying the steps on the fleet
    /// itself, as the controller's changes do, each start goes where `place` puts it on
    /// the fleet as it is then, and what is left is the plan's `after`.
    #[test]
    fn the_plan_is_what_placing_on_the_fleet_step_by_step_gives() {
        let mut rng = Lcg(17);
        let mut checked = 0;
        for case in 0..300 {
            let mut f = Fleet::default();
            for n in 0..2 + rng.below(5) {
                let az = *rng.pick(&["az1", "az2", "az3"]);
                let tag_sets: [&[&str]; 3] = [&[], &["ssd"], &["ssd", "gpu"]];
                let tags = *rng.pick(&tag_sets);
                let h = host(&format!("h{n}"), az, tags, 2 + rng.below(7) as u32, 2048 * (1 + rng.below(4)));
                f.hosts.insert(h.info.id.clone(), h);
            }
            let hosts: Vec<String> = f.hosts.keys().cloned().collect();
            let cpus = [0.25f32, 0.5, 0.75, 1.0, 1.5];
            let old_c = need(*rng.pick(&cpus), 256 * (1 + rng.below(3)));
            for k in 0..rng.below(15) as usize {
                let version = *rng.pick(&["1", "1", "2"]);
                let index = rng.below(14) as u32;
                let on = rng.pick(&hosts[..]).clone();
                put(&mut f, version, index, &on, k, &old_c);
            }
            let other = need(0.5, 512);
            for k in 0..rng.below(4) as usize {
                let t = Target {
                    app: "db",
                    version: "1",
                    instances: 0,
                    constraints: &other,
                    strategy: Strategy::All,
                };
                let on = rng.pick(&hosts[..]).clone();
                let i = t.new_instance(format!("db-{k}"), k as u32, &on, 5432);
                f.instances.insert(i.id.clone(), i);
            }
            let mut c = need(*rng.pick(&cpus), 256 * (1 + rng.below(4)));
            if rng.below(3) == 0 {
                c.azs = vec![rng.pick(&["az1", "az2", "az3"]).to_string()];
            }
            if rng.below(3) == 0 {
                c.tags = vec!["ssd".into()];
            }
            let version = *rng.pick(&["1", "2", "3"]);
            let strategy = *rng.pick(&[Strategy::Rolling, Strategy::All]);
            let t = target(version, 1 + rng.below(15) as u32, &c, strategy);
            let p = plan(&f, &Usage::of(&f), &t);

            let mut now = f.clone();
            let mut placed = p.placements.iter();
            let mut failed = None;
            for step in &p.steps {
                match step {
                    Step::Start { index } => {
                        let req = PlacementRequest { app: "web", count: 1, constraints: &c, exclude: &[] };
                        match place(&now, &req) {
                            Ok(hosts) => {
                                assert_eq!(Some(&hosts[0]), placed.next(), "case {case}: {step:?}");
                                let id = format!("new-{index}");
                                now.instances.insert(id.clone(), t.new_instance(id, *index, &hosts[0], 8080));
                            }
                            Err(e) => {
                                failed = Some(e.reason);
                                break;
                            }
                        }
                    }
                    Step::Retire { instance, .. } => {
                        now.instances.remove(&instance.id);
                    }
                }
            }
            assert_eq!(failed, p.no_fit.as_ref().map(|e| e.reason.clone()), "case {case}");
            assert_eq!(placed.next(), None, "case {case}: every planned host was placed");
            if failed.is_none() {
                assert_eq!(Usage::of(&now), p.after, "case {case}");
                // What remains of web is the target: its version, its count.
                let left: Vec<&Instance> = now.instances_of("web").collect();
                assert_eq!(left.len(), t.instances as usize, "case {case}: {p:#?}");
                assert!(left.iter().all(|i| i.version == version), "case {case}");
                checked += 1;
            }
        }
        assert!(checked > 100, "most cases fit: {checked}");
    }
}
