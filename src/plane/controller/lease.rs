//! Only one controller is active at a time. The active one holds a lease in a JetStream KV
//! bucket and renews it; a second one waits, and takes over once the lease has expired.
//! Every write is compare-and-set on the key's revision, so two controllers can never both
//! believe they hold it.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::bus::NatsBus;
use crate::protocol::clock::now_ms;

const BUCKET: &str = "qd_leader";
const KEY: &str = "controller";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseValue {
    holder: String,
    expires_at: u64,
}

pub struct Lease {
    kv: async_nats::jetstream::kv::Store,
    holder: String,
    ttl: Duration,
    revision: u64,
}

impl Lease {
    /// Waits until this controller holds the lease. The same holder id (a restarted
    /// controller) takes its own lease back at once; another waits for it to expire.
    pub async fn acquire(bus: &NatsBus, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        let js = bus.jetstream();
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(async_nats::jetstream::kv::Config {
                    bucket: BUCKET.into(),
                    history: 1,
                    ..Default::default()
                })
                .await
                .map_err(|e| StoreError(format!("lease bucket: {e}")))?,
        };
        let mut lease = Lease { kv, holder: holder.to_string(), ttl, revision: 0 };
        let mut waiting_logged = false;
        loop {
            match lease.try_take().await {
                Ok(true) => {
                    log::info!("controller {holder} holds the lease");
                    return Ok(lease);
                }
                Ok(false) => {
                    if !waiting_logged {
                        log::info!("standby: another controller holds the lease; waiting for it to expire");
                        waiting_logged = true;
                    }
                }
                Err(e) => log::warn!("lease: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn value(&self) -> Bytes {
        let v =
            LeaseValue { holder: self.holder.clone(), expires_at: now_ms() + self.ttl.as_millis() as u64 };
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
    }

    async fn try_take(&mut self) -> Result<bool, StoreError> {
        let entry = self.kv.entry(KEY).await.map_err(|e| StoreError(format!("lease read: {e}")))?;
        let current = entry
            .as_ref()
            .filter(|e| !e.value.is_empty())
            .and_then(|e| serde_json::from_slice::<LeaseValue>(&e.value).ok());
        let result = match (&entry, current) {
            (None, _) => self.kv.create(KEY, self.value()).await.map_err(|e| e.to_string()),
            (Some(_), Some(held)) if held.holder != self.holder && held.expires_at > now_ms() => {
                return Ok(false);
            }
            (Some(e), _) => self.kv.update(KEY, self.value(), e.revision).await.map_err(|e| e.to_string()),
        };
        match result {
            Ok(rev) => {
                self.revision = rev;
                Ok(true)
            }
            // Someone else wrote first: not ours this time.
            Err(_) => Ok(false),
        }
    }

    /// Renews the lease every third of its TTL until it is lost, then returns. The caller
    /// must stop acting as the controller.
    pub async fn keep(mut self) -> String {
        let period = self.ttl / 3;
        loop {
            tokio::time::sleep(period).await;
            match self.kv.update(KEY, self.value(), self.revision).await {
                Ok(rev) => self.revision = rev,
                Err(e) => {
                    // A transient error is retried until the lease would have expired.
                    log::warn!("lease renewal failed: {e}");
                    if let Ok(Some(entry)) = self.kv.entry(KEY).await
                        && entry.revision != self.revision
                    {
                        return format!("another controller took the lease: {e}");
                    }
                }
            }
        }
    }
}
