//! `secret.set`: a secret's new value is written to the `qd_secrets` bucket as the next
//! version, and the app is deployed again (same version, same count) with the new
//! `SecretRef`, through the one deploy path, so it is a release like any other change.
//! The value lives only in this command's body and in the bucket: the spec, the events,
//! the audit record (`audit::redacted`) and every message carry the reference.
//!
//! The value is in the bucket before anything names it: the request loop writes it
//! ([`prewrite`], a round trip) before the command is decided, and only then does the
//! handler commit the spec. A controller killed in between leaves at most a version that
//! no spec names, never a spec naming a version that was not stored.

use bytes::Bytes;

use super::commands::{answered_before, ready_now, start_deploy_after};
use super::core::Controller;
use crate::protocol::{
    Accepted, AppSpec, DeployRequest, Envelope, ErrorCode, RunPatch, SecretSetRequest, Strategy, WireError,
    decode, validate,
};
use crate::secrets::{Secrets, VERSIONS_KEPT, secret_ref};

/// A secret's value as the request loop wrote it, before its command was decided.
pub(crate) struct Written {
    app: String,
    name: String,
    version: u64,
    sha8: String,
    /// The write's error, if it failed (it names the key at most, never the value).
    outcome: Result<(), String>,
}

/// What a `secret.set` would change: checked the same way before the write and when the
/// command is decided, so both agree on the version.
struct Plan {
    store: Secrets,
    existing: AppSpec,
    version: u64,
}

fn plan(ctl: &Controller, req: &SecretSetRequest) -> Result<Plan, WireError> {
    let SecretSetRequest { app, name, value } = req;
    validate::name("app", app).map_err(WireError::bad_request)?;
    validate::env_name("secret", name).map_err(WireError::bad_request)?;
    validate::secret_value(name, value).map_err(WireError::bad_request)?;
    let Some(store) = ctl.secrets() else {
        return Err(WireError::new(ErrorCode::Unavailable, "this controller has no secret store"));
    };
    let Some(existing) = ctl.read(|core| core.fleet.apps.get(app).cloned()) else {
        return Err(WireError::not_found(format!("no app {app}: deploy it before setting its secrets")));
    };
    if existing.run.env.contains_key(name) {
        return Err(WireError::bad_request(format!(
            "{name} is an env variable of {app}: unset it first (`ctl env unset {app} {name}`)"
        )));
    }
    // The next version after the one the fleet names.
    let version = existing.run.secrets.get(name).map_or(0, |r| r.version) + 1;
    Ok(Plan { store, existing, version })
}

/// Writes the value of a `secret.set` to the bucket under the version the fleet makes
/// next. Nothing is written for a command the handler will refuse anyway (malformed, late,
/// invalid) nor for a repeat of one already decided: the repeat is answered as the first.
///
/// A command refused after the write (its app busy, ...) leaves that version in the
/// bucket unused: harmless, since no spec names it and the next `secret.set` of that name
/// writes the same key again.
pub(super) async fn prewrite(ctl: &Controller, payload: &[u8]) -> Option<Written> {
    let envelope: Envelope<SecretSetRequest> = decode(payload).ok()?;
    envelope.check_deadline(crate::protocol::clock::now_ms()).ok()?;
    validate::command_id(&envelope.id).ok()?;
    if answered_before(ctl, &envelope.id).is_some() {
        return None;
    }
    let req = envelope.body;
    let Plan { store, version, .. } = plan(ctl, &req).ok()?;
    let sha8 = secret_ref(req.value.as_bytes(), version).sha8;
    let value = Bytes::from(req.value.into_bytes());
    let outcome = store.0.put(&req.app, &req.name, version, value).await.map_err(|e| e.to_string());
    Some(Written { app: req.app, name: req.name, version, sha8, outcome })
}

pub(super) fn start_secret_set(
    ctl: &Controller,
    req: SecretSetRequest,
    command_id: &str,
    user: &str,
    written: Option<Written>,
) -> Result<Accepted, WireError> {
    let Plan { store, existing, version } = plan(ctl, &req)?;
    let SecretSetRequest { app, name, value } = req;
    let reference = secret_ref(value.as_bytes(), version);
    // Only a write of exactly this value as exactly this version lets a spec name it.
    let written = written.filter(|w| {
        w.app == app && w.name == name && w.version == version && w.sha8 == reference.sha8
    });
    match written.map(|w| w.outcome) {
        Some(Ok(())) => {}
        Some(Err(why)) => {
            return Err(WireError::new(
                ErrorCode::Unavailable,
                format!("the value of {name} v{version} could not be stored, nothing changed: {why}"),
            ));
        }
        None => {
            return Err(WireError::new(
                ErrorCode::Unavailable,
                format!("the value of {name} v{version} was not stored before the command was decided; try again"),
            ));
        }
    }
    let mut secrets = existing.run.secrets.clone();
    secrets.insert(name.clone(), reference);
    let deploy = DeployRequest {
        app: app.clone(),
        version: existing.version.clone(),
        instances: existing.instances,
        image: None,
        port: None,
        constraints: None,
        domain: None,
        tags: None,
        run: Some(RunPatch { secrets: Some(secrets), ..RunPatch::default() }),
        strategy: Strategy::Rolling,
    };
    let accepted = start_deploy_after(ctl, deploy, command_id, user, ready_now())?;
    // Versions a rollback could still name are kept; the ones past them go, once the new
    // one is named.
    if version > VERSIONS_KEPT {
        ctl.spawn(async move {
            if let Err(e) = store.0.delete(&app, &name, version - VERSIONS_KEPT).await {
                log::warn!("{app}: could not delete an old version of a secret: {e}");
            }
        });
    }
    Ok(accepted)
}
