//! The deploy wizard's plan preview against a real controller on a real nats-server: what
//! the preview shows (new instances per host, CPU and memory left after the deploy) is what
//! the controller then does. Issue 17: the two planned apart and retired instances in
//! different orders (the preview by id, where `web-10-…` sorts before `web-2-…`; the
//! controller by index), so a scale down promised to free the wrong hosts.

use quarterdeck::app::wizard::{Field, Wizard};
use quarterdeck::protocol::Fleet;

use crate::nats_support::{
    PlaneConfig, block_on, connect, ctl_ok, deploy_args, library_snapshot, plane_or_skip,
};

fn fleet(url: &str) -> Fleet {
    block_on(async {
        let bus = connect(url, "test/deploy-plan").await;
        library_snapshot(&bus).await
    })
    .expect("a snapshot")
}

/// Per host, in the preview's words: new instances, CPU and memory left.
fn outcome(before: &Fleet, after: &Fleet) -> Vec<(String, u32, String, u64)> {
    after
        .hosts
        .values()
        .map(|h| {
            let on: Vec<_> = after.instances_on(&h.info.id).filter(|i| i.state.occupies_host()).collect();
            let new = on.iter().filter(|i| !before.instances.contains_key(&i.id)).count() as u32;
            let cpu: f32 = on.iter().map(|i| i.cpu_limit).sum();
            let mem: u64 = on.iter().map(|i| i.mem_limit_mb).sum();
            let cpu_left = format!("{:.2}", h.info.cpu_cores as f32 - cpu);
            (h.info.id.clone(), new, cpu_left, h.info.memory_total_mb.saturating_sub(mem))
        })
        .collect()
}

#[test]
fn the_wizards_preview_is_what_the_controller_then_does() {
    // A host gone stale on a loaded machine between the preview and the deploy would be
    // placed around: hosts stay up for a minute without a heartbeat.
    let config = PlaneConfig {
        controller: vec!["--stale-after", "200", "--lost-after", "400"],
        ..PlaneConfig::default()
    };
    let plane = plane_or_skip!("nats_deploy_plan", config);
    let url = plane.url();
    // Thirteen instances, spread over h1 (even indexes) and h2 (odd).
    plane.deploy("web", "1", 13);
    // A scale down of the same version (the highest indexes go), then a rolling deploy of
    // a new version that also scales up.
    for (version, instances) in [("1", "10"), ("2", "12")] {
        let before = fleet(&url);
        let mut w = Wizard::new(&before, Some("web"));
        w.values[Field::Version as usize] = version.into();
        w.values[Field::Instances as usize] = instances.into();
        w.preview(&before);
        let plan = w.plan.clone().unwrap_or_else(|| panic!("no plan: {:?}", w.error));
        assert_eq!(plan.no_fit, None, "web@{version} x{instances} fits");
        let promised: Vec<(String, u32, String, u64)> = plan
            .hosts
            .iter()
            .map(|h| (h.host.clone(), h.new, format!("{:.2}", h.cpu_left), h.memory_left_mb))
            .collect();

        ctl_ok(&url, &deploy_args("web", version, instances));
        let after = fleet(&url);
        assert_eq!(
            promised,
            outcome(&before, &after),
            "web@{version} x{instances}: the preview (left) against what the controller did (right)"
        );
    }
}
