//! Secret values: each version of each app's secret under its own key of the JetStream KV
//! bucket `qd_secrets`. The controller writes a value when an operator sets it (a
//! `secret.set` command); an agent reads the exact version an instance's spec names when
//! it creates the container. Nobody else may read the bucket (the roles in `auth`), and the
//! value is never part of an event, a snapshot, an audit record or a log line: the spec
//! carries a `SecretRef` (version and sha8) only. Memory serves the sandbox and tests.
//!
//! Shared by the plane's controller and agent, like the artifact repository.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::bus::NatsBus;
use crate::protocol::SecretRef;

/// The KV bucket secret values live in.
pub const BUCKET: &str = crate::protocol::SECRETS_BUCKET;

/// The versions of one secret kept in the bucket: enough for a rollback to any of the
/// releases an app keeps. Older ones are deleted when a new one is written.
pub const VERSIONS_KEPT: u64 = 50;

/// The reference of `value` as version `version`: the first 8 hex characters of its sha256.
pub fn secret_ref(value: &[u8], version: u64) -> SecretRef {
    let digest = ring::digest::digest(&ring::digest::SHA256, value);
    let sha8 = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    SecretRef { version, sha8 }
}

/// `<app>.<NAME>.<version>`: an app name (`a-z 0-9 -`) and a secret name (`A-Za-z0-9_`)
/// are each one KV key token, so no two apps' secrets share a key.
pub fn key(app: &str, name: &str, version: u64) -> String {
    format!("{app}.{name}.{version}")
}

/// Why a secret could not be read or written. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} v{version} is not in the {BUCKET} bucket")]
    Missing { name: String, version: u64 },
    #[error("secret {name} v{version} in the {BUCKET} bucket has sha8 {actual}, not {expected}")]
    Mismatch { name: String, version: u64, expected: String, actual: String },
    #[error("{BUCKET}: {0}")]
    Other(String),
}

#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Writes version `version` of `app`'s secret `name`. A version is written again only
    /// when no spec kept it: its command was refused after the write, or its deploy failed
    /// and the app went back to the version before.
    async fn put(&self, app: &str, name: &str, version: u64, value: Bytes) -> Result<(), SecretError>;
    /// The value of that version, if the bucket holds it.
    async fn get(&self, app: &str, name: &str, version: u64) -> Result<Option<Bytes>, SecretError>;
    /// Forgets that version (an old one past [`VERSIONS_KEPT`]).
    async fn delete(&self, app: &str, name: &str, version: u64) -> Result<(), SecretError>;
}

/// A handle on a secret store, cheap to clone, that never shows what it holds.
#[derive(Clone)]
pub struct Secrets(pub Arc<dyn SecretStore>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// The value `r` names, checked against its sha8: an agent never starts a container
    /// with a value other than the one the spec was made with.
    pub async fn resolve(&self, app: &str, name: &str, r: &SecretRef) -> Result<String, SecretError> {
        let missing = || SecretError::Missing { name: name.to_string(), version: r.version };
        let value = self.0.get(app, name, r.version).await?.ok_or_else(missing)?;
        let actual = secret_ref(&value, r.version).sha8;
        if actual != r.sha8 {
            return Err(SecretError::Mismatch {
                name: name.to_string(),
                version: r.version,
                expected: r.sha8.clone(),
                actual,
            });
        }
        String::from_utf8(value.to_vec())
            .map_err(|_| SecretError::Other(format!("secret {name} v{} is not UTF-8", r.version)))
    }

    /// Every secret of a spec as `NAME=value`, for a container's environment.
    pub async fn environment(
        &self,
        app: &str,
        refs: &std::collections::BTreeMap<String, SecretRef>,
    ) -> Result<Vec<String>, SecretError> {
        let mut env = Vec::with_capacity(refs.len());
        for (name, r) in refs {
            env.push(format!("{name}={}", self.resolve(app, name, r).await?));
        }
        Ok(env)
    }
}

/// The JetStream KV bucket `qd_secrets`.
pub struct KvSecrets {
    js: async_nats::jetstream::Context,
    /// The controller creates the bucket; an agent only looks it up (with roles on, the
    /// server refuses it the create).
    creates: bool,
    replicas: usize,
    kv: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

impl KvSecrets {
    /// The bucket, created if need be, with `replicas` copies: the controller's.
    pub async fn open(bus: &NatsBus, replicas: usize) -> Result<KvSecrets, SecretError> {
        let s = KvSecrets { js: bus.jetstream(), creates: true, replicas, kv: Default::default() };
        s.kv().await?;
        crate::bus::replicas::ensure(&s.js, &format!("KV_{BUCKET}"), replicas)
            .await
            .map_err(SecretError::Other)?;
        Ok(s)
    }

    /// The bucket for reading, looked up at its first use: an agent may start before the
    /// controller made it.
    pub fn reader(bus: &NatsBus) -> KvSecrets {
        KvSecrets { js: bus.jetstream(), creates: false, replicas: 1, kv: Default::default() }
    }

    async fn kv(&self) -> Result<&async_nats::jetstream::kv::Store, SecretError> {
        self.kv
            .get_or_try_init(|| async {
                match self.js.get_key_value(BUCKET).await {
                    Ok(kv) => Ok(kv),
                    Err(_) if self.creates => self
                        .js
                        .create_key_value(async_nats::jetstream::kv::Config {
                            bucket: BUCKET.into(),
                            history: 1,
                            storage: async_nats::jetstream::stream::StorageType::File,
                            num_replicas: self.replicas,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| SecretError::Other(format!("cannot create the bucket: {e}"))),
                    Err(e) => Err(SecretError::Other(format!("cannot open the bucket: {e}"))),
                }
            })
            .await
    }
}

#[async_trait]
impl SecretStore for KvSecrets {
    async fn put(&self, app: &str, name: &str, version: u64, value: Bytes) -> Result<(), SecretError> {
        self.kv()
            .await?
            .put(key(app, name, version), value)
            .await
            .map(|_| ())
            // The error names the key at most, never the value.
            .map_err(|e| SecretError::Other(format!("cannot write {name} v{version}: {e}")))
    }

    async fn get(&self, app: &str, name: &str, version: u64) -> Result<Option<Bytes>, SecretError> {
        self.kv()
            .await?
            .get(key(app, name, version))
            .await
            .map_err(|e| SecretError::Other(format!("cannot read {name} v{version}: {e}")))
    }

    async fn delete(&self, app: &str, name: &str, version: u64) -> Result<(), SecretError> {
        self.kv()
            .await?
            .purge(key(app, name, version))
            .await
            .map_err(|e| SecretError::Other(format!("cannot delete {name} v{version}: {e}")))
    }
}

/// Secrets in memory: the sandbox's, gone when the process ends.
#[derive(Default)]
pub struct MemorySecrets {
    values: std::sync::Mutex<HashMap<String, Bytes>>,
}

impl MemorySecrets {
    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        // Every write is one insert or remove: a panic elsewhere leaves the map whole.
        self.values.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn put(&self, app: &str, name: &str, version: u64, value: Bytes) -> Result<(), SecretError> {
        self.values().insert(key(app, name, version), value);
        Ok(())
    }

    async fn get(&self, app: &str, name: &str, version: u64) -> Result<Option<Bytes>, SecretError> {
        Ok(self.values().get(&key(app, name, version)).cloned())
    }

    async fn delete(&self, app: &str, name: &str, version: u64) -> Result<(), SecretError> {
        self.values().remove(&key(app, name, version));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_the_version_and_the_first_8_hex_of_the_sha256() {
        // sha256("hello") = 2cf24dba5fb0a30e...
        assert_eq!(secret_ref(b"hello", 3), SecretRef { version: 3, sha8: "2cf24dba".into() });
        assert_eq!(key("shop-web", "DB_PASS", 2), "shop-web.DB_PASS.2");
    }

    #[tokio::test]
    async fn resolve_gives_the_exact_version_and_refuses_a_wrong_sha_without_the_value() {
        let store = Arc::new(MemorySecrets::default());
        let secrets = Secrets(store.clone());
        store.put("web", "K", 1, Bytes::from_static(b"one")).await.unwrap();
        store.put("web", "K", 2, Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(secrets.resolve("web", "K", &secret_ref(b"one", 1)).await.unwrap(), "one");
        assert_eq!(secrets.resolve("web", "K", &secret_ref(b"two", 2)).await.unwrap(), "two");
        let wrong = SecretRef { version: 2, sha8: secret_ref(b"one", 2).sha8 };
        let err = secrets.resolve("web", "K", &wrong).await.unwrap_err().to_string();
        assert!(err.contains("K v2") && !err.contains("two") && err.contains("not"), "{err}");
        let missing = secrets.resolve("web", "K", &secret_ref(b"x", 3)).await.unwrap_err();
        assert_eq!(missing, SecretError::Missing { name: "K".into(), version: 3 });
        assert!(secrets.resolve("other", "K", &secret_ref(b"one", 1)).await.is_err(), "per app");
        let env =
            secrets.environment("web", &[("K".to_string(), secret_ref(b"two", 2))].into()).await.unwrap();
        assert_eq!(env, vec!["K=two".to_string()]);
    }
}
