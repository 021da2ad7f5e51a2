//! How many copies a JetStream object keeps on a cluster. The controller is told
//! (`--replicas`) and brings the objects it uses to that number: an object another process
//! made first (an agent opens the artifact bucket too) or an earlier single-node run made
//! with one copy is scaled, not kept as it was.

use async_nats::jetstream::Context;

/// Sets the stream `name` (a KV bucket is the stream `KV_<bucket>`, an object store
/// `OBJ_<bucket>`) to `replicas` copies, if it has another number. nats-server refuses more
/// copies than the cluster has nodes, and that refusal is the error.
pub async fn ensure(js: &Context, name: &str, replicas: usize) -> Result<(), String> {
    let mut stream = js.get_stream(name).await.map_err(|e| format!("stream {name}: {e}"))?;
    let info = stream.info().await.map_err(|e| format!("stream {name} info: {e}"))?;
    let had = info.config.num_replicas.max(1);
    if had == replicas {
        return Ok(());
    }
    let mut config = info.config.clone();
    config.num_replicas = replicas;
    js.update_stream(config)
        .await
        .map_err(|e| format!("stream {name}: cannot go from {had} to {replicas} replicas: {e}"))?;
    log::info!("stream {name}: {had} -> {replicas} replicas");
    Ok(())
}
