//! Every request body the controller takes on `qd.v1.ctl.<verb>`, chosen by the first byte:
//! decoded as the controller decodes it, validated with the same rules, and recorded in
//! the audit trail, whose record must stay bounded whatever was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{
    AllocateRequest, DeployRequest, HistoryRequest, RestartBody, RestartRequest, RouteRequest, RunSpec,
    SnapshotRequest, decode, validate,
};
use quarterdeck_fuzz::{command, round_trip, split};

/// The checks the controller makes of a deploy, field by field (`commands.rs`, `build_app`).
fn deploy(req: &DeployRequest) -> Result<(), String> {
    validate::name("app", &req.app)?;
    validate::version(&req.version)?;
    if let Some(image) = &req.image {
        validate::image(image)?;
    }
    if let Some(c) = &req.constraints {
        validate::names("AZ", &c.azs)?;
        validate::names("tag", &c.tags)?;
        validate::limits(c.cpu, c.memory_mb)?;
    }
    if let Some(d) = &req.domain {
        validate::domain(d)?;
    }
    if let Some(tags) = &req.tags {
        validate::names("tag", tags)?;
    }
    if let Some(patch) = &req.run {
        let run = RunSpec::default().patched(patch);
        validate::run(&run)?;
        round_trip(&run);
    }
    Ok(())
}

/// The restart's own checks; its names are then looked up in the fleet, and a name not
/// there is refused quoted (`validate::quoted`).
fn restart(req: &RestartBody) -> Result<(), String> {
    if req.batch == Some(0) {
        return Err("batch must be at least 1".into());
    }
    let names: Vec<&String> = match &req.target {
        RestartRequest::App(n) | RestartRequest::Host(n) | RestartRequest::Instance(n) => vec![n],
        RestartRequest::Instances(list) => list.iter().collect(),
    };
    names.iter().for_each(|n| drop(validate::quoted(n)));
    Ok(())
}

fn route(req: &RouteRequest) -> Result<(), String> {
    validate::name("app", &req.app)?;
    validate::backend(&req.backend)?;
    match req.weight {
        Some(w) if !(1..=1000).contains(&w) => Err(format!("weight must be 1 to 1000, not {w}")),
        _ => Ok(()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    match selector % 10 {
        0 => {
            // A snapshot request that does not decode still gets the whole fleet.
            if let Ok(env) = decode::<SnapshotRequest>(payload) {
                round_trip(&env.body);
            }
        }
        1 => {
            if let Ok(env) = decode::<HistoryRequest>(payload) {
                round_trip(&env.body);
            }
        }
        2 => {
            command("repo.allocate", payload, |r: &AllocateRequest| {
                validate::name("app", &r.app)?;
                validate::version(&r.version)?;
                // The slot a valid request gets names one object in the repository.
                let slot = quarterdeck::plane::repository::slot(&r.app, &r.version);
                assert!(!slot.contains('/') && !slot.is_empty(), "slot {slot:?}");
                Ok(())
            });
        }
        3 => {
            command("deploy", payload, deploy);
        }
        4 => {
            command("restart", payload, restart);
        }
        s => {
            let verb = ["route.add", "route.remove", "route.enable", "route.disable", "route.weight"]
                [usize::from(s - 5)];
            command(verb, payload, route);
        }
    }
});
