//! `secret.set`: a secret's new value is written to the `qd_secrets` bucket as the next
//! version, and the app is deployed again (same version, same count) with the new
//! `SecretRef`, through the one deploy path, so it is a release like any other change.
//! The value lives only in this command's body and in the bucket: the spec, the events,
//! the audit record (`audit::redacted`) and every message carry the reference.

use bytes::Bytes;

use super::commands::start_deploy_after;
use super::core::Controller;
use crate::protocol::{
    Accepted, DeployRequest, ErrorCode, RunPatch, SecretSetRequest, Strategy, WireError, validate,
};
use crate::secrets::{VERSIONS_KEPT, secret_ref};

pub(super) fn start_secret_set(
    ctl: &Controller,
    req: SecretSetRequest,
    command_id: &str,
    user: &str,
) -> Result<Accepted, WireError> {
    let SecretSetRequest { app, name, value } = req;
    validate::name("app", &app).map_err(WireError::bad_request)?;
    validate::env_name("secret", &name).map_err(WireError::bad_request)?;
    validate::secret_value(&name, &value).map_err(WireError::bad_request)?;
    let Some(store) = ctl.secrets() else {
        return Err(WireError::new(ErrorCode::Unavailable, "this controller has no secret store"));
    };
    let Some(existing) = ctl.read(|core| core.fleet.apps.get(&app).cloned()) else {
        return Err(WireError::not_found(format!("no app {app}: deploy it before setting its secrets")));
    };
    if existing.run.env.contains_key(&name) {
        return Err(WireError::bad_request(format!(
            "{name} is an env variable of {app}: unset it first (`ctl env unset {app} {name}`)"
        )));
    }
    let version = existing.run.secrets.get(&name).map_or(0, |r| r.version) + 1;
    let mut secrets = existing.run.secrets.clone();
    secrets.insert(name.clone(), secret_ref(value.as_bytes(), version));
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
    let value = Bytes::from(value.into_bytes());
    let ready = Box::pin(async move {
        store.0.put(&app, &name, version, value).await.map_err(|e| e.to_string())?;
        // Versions a rollback could still name are kept; the ones past them go.
        if version > VERSIONS_KEPT
            && let Err(e) = store.0.delete(&app, &name, version - VERSIONS_KEPT).await
        {
            log::warn!("{app}: could not delete an old version of a secret: {e}");
        }
        Ok(())
    });
    start_deploy_after(ctl, deploy, command_id, user, ready)
}
