//! Every request body the controller takes on `qd.v1.ctl.<user>.<verb>`, chosen by the first byte:
//! decoded as the controller decodes it, validated with the same rules, and recorded in
//! the audit trail, whose record must stay bounded whatever was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::controller::{build_app, check_route};
use quarterdeck::protocol::subjects::{CtlVerb, RouteVerb};
use quarterdeck::protocol::{
    AllocateRequest, DeployRequest, HistoryRequest, RestartBody, RestartRequest, RouteRequest, SnapshotRequest,
    decode, validate,
};
use quarterdeck_fuzz::{command, round_trip, split};

/// The controller's own checks of a deploy (`build_app`), for a new app and for a
/// redeploy of an existing one; what they accept is valid throughout.
fn deploy(req: &DeployRequest) -> Result<(), String> {
    let new = build_app(None, req).map_err(|e| e.reason)?;
    validate::run(&new.run)?;
    round_trip(&new);
    if let Ok(again) = build_app(Some(&new), req) {
        assert_eq!(again.image, new.image, "a redeploy of the same request keeps the image");
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
                let slot = quarterdeck::repository::slot(&r.app, &r.version);
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
            let verb = RouteVerb::ALL[usize::from(s - 5)];
            command(CtlVerb::Route(verb).as_str(), payload, |r: &RouteRequest| {
                check_route(verb, r).map(drop).map_err(|e| e.reason)
            });
        }
    }
});
