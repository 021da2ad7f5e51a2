//! The label schema. Labels are the only state a container carries for the agent: after a
//! restart the agent finds its containers by `quarterdeck.host` and rebuilds each instance
//! from the rest, so nothing else has to survive the restart.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::{HealthCheck, InstanceSpec};

pub const APP: &str = "quarterdeck.app";
pub const INSTANCE: &str = "quarterdeck.instance";
pub const INDEX: &str = "quarterdeck.index";
pub const VERSION: &str = "quarterdeck.version";
pub const HOST: &str = "quarterdeck.host";
/// The container port the app listens on (the published one is read from Docker).
pub const PORT: &str = "quarterdeck.port";
/// Where the artifact is mounted; empty for an image-only app.
pub const MOUNT: &str = "quarterdeck.mount";
/// The artifact's sha256, so a redeploy of the same content is recognised.
pub const ARTIFACT: &str = "quarterdeck.artifact";
/// The health check, as on the command line: `tcp` or `http:/path`.
pub const HEALTH: &str = "quarterdeck.health";

/// Docker container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]`; instance ids are a subset.
pub fn container_name(instance: &str) -> String {
    format!("qd-{instance}")
}

pub fn for_spec(
    spec: &InstanceSpec,
    host: &str,
    extra: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = extra.clone().into_iter().collect();
    let artifact = spec.run.artifact.as_ref();
    for (k, v) in [
        (APP, spec.app.clone()),
        (INSTANCE, spec.id.clone()),
        (INDEX, spec.index.to_string()),
        (VERSION, spec.version.clone()),
        (HOST, host.to_string()),
        (PORT, spec.port.to_string()),
        (MOUNT, if artifact.is_some() { spec.run.mount.clone() } else { String::new() }),
        (ARTIFACT, artifact.map(|a| a.sha256.clone()).unwrap_or_default()),
        (HEALTH, health_label(&spec.run.health)),
    ] {
        labels.insert(k.to_string(), v);
    }
    labels
}

fn health_label(check: &HealthCheck) -> String {
    match check {
        HealthCheck::Tcp => "tcp".into(),
        HealthCheck::Http { path } => format!("http:{path}"),
    }
}

/// An instance as its container's labels describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub instance: String,
    pub app: String,
    pub version: String,
    pub index: u32,
    pub port: u16,
    pub mount: String,
    pub artifact: String,
    pub health: HealthCheck,
}

/// The instance a container belongs to, if it is one of `host`'s. A container labelled for
/// another host, or with labels that do not parse, is not ours and is never touched.
pub fn parse(labels: &HashMap<String, String>, host: &str) -> Option<Labelled> {
    if labels.get(HOST).map(String::as_str) != Some(host) {
        return None;
    }
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let instance = get(INSTANCE);
    if instance.is_empty() {
        return None;
    }
    Some(Labelled {
        instance,
        app: get(APP),
        version: get(VERSION),
        index: get(INDEX).parse().ok()?,
        port: get(PORT).parse().ok()?,
        mount: get(MOUNT),
        artifact: get(ARTIFACT),
        health: HealthCheck::parse(&get(HEALTH)).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_other_hosts_are_not_ours() {
        let spec = InstanceSpec {
            id: "web-0-abcd".into(),
            app: "web".into(),
            version: "1.0".into(),
            index: 0,
            image: "img".into(),
            port: 8080,
            cpu: 0.5,
            memory_mb: 64,
            operation_id: "op-1".into(),
            run: Default::default(),
        };
        let labels = for_spec(&spec, "host-a", &BTreeMap::new());
        let parsed = parse(&labels, "host-a").unwrap();
        assert_eq!(parsed.instance, "web-0-abcd");
        assert_eq!(parsed.port, 8080);
        assert_eq!(parsed.mount, "", "no artifact, no mount");
        assert_eq!(parsed.health, HealthCheck::Tcp);
        assert!(parse(&labels, "host-b").is_none());
        assert!(parse(&HashMap::new(), "host-a").is_none());
    }
}
