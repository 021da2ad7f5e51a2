//! `:export`: the handover timeline of a window, from the controller's history, written
//! as Markdown to a file; the app is told where, or why not.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::client::{COMMAND_TIMEOUT, Inbound};
use crate::bus::Bus;
use crate::client::timeline::{cut_warning, history};
use crate::protocol::TimelineExport;
use crate::protocol::timeline;

pub(super) async fn export(
    bus: Arc<dyn Bus>,
    source: String,
    req: TimelineExport,
    updates: mpsc::Sender<Inbound>,
) {
    let result = write(bus.as_ref(), &source, &req).await;
    let _ = updates.send(Inbound::Exported { path: req.path, result }).await;
}

async fn write(bus: &dyn Bus, source: &str, req: &TimelineExport) -> Result<usize, String> {
    let events = history(bus, source, req.since, COMMAND_TIMEOUT)
        .await
        .map_err(|e| format!("no history from the controller: {e}"))?;
    if let Some(w) = cut_warning(&events, req.since) {
        log::warn!("export: {w}");
    }
    let t = timeline::build(&req.plane, req.since, req.until, &events);
    tokio::fs::write(&req.path, t.markdown())
        .await
        .map_err(|e| format!("cannot write {}: {e}", req.path.display()))?;
    Ok(t.entries.len())
}
