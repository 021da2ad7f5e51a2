//! Fetching the fleet's snapshot by pages: one shared client for the cockpit's backend, the
//! router and `ctl snapshot`. A whole fleet can be larger than the server's max_payload, so
//! the client asks for page 0, then pages 1.. at the revision page 0 named, and decodes the
//! joined text. When the controller has moved on from that revision it starts again.

use std::time::Duration;

use bytes::Bytes;

use crate::bus::{Bus, RequestError};
use crate::protocol::{
    Envelope, ErrorCode, Fleet, ProtocolError, Reply, SnapshotPage, SnapshotRequest, WireError, decode,
    encode, subjects,
};

/// Fresh starts from page 0 after the controller dropped the revision being read, before
/// giving up: each needs the fleet to change twice during one read (two encodings are
/// kept), so more than a few means the reads are too slow for the rate of change.
pub const MAX_RESTARTS: usize = 5;

/// The whole fleet at one revision, fetched by pages; `timeout` is for each page.
pub async fn fetch_fleet(bus: &dyn Bus, source: &str, timeout: Duration) -> Result<Fleet, RequestError> {
    let mut last_refusal = None;
    for _ in 0..=MAX_RESTARTS {
        match read_pages(bus, source, timeout).await {
            Err(RequestError::Refused(w)) if w.code == ErrorCode::Conflict => {
                log::info!("snapshot read started again: {w}");
                last_refusal = Some(w);
            }
            other => return other,
        }
    }
    let last = last_refusal.map(|w| w.reason).unwrap_or_default();
    Err(RequestError::Refused(WireError::new(
        ErrorCode::Conflict,
        format!(
            "the snapshot changed under every read: gave up after {} fresh starts (last: {last})",
            MAX_RESTARTS
        ),
    )))
}

/// One read: page 0, then the rest at page 0's revision.
async fn read_pages(bus: &dyn Bus, source: &str, timeout: Duration) -> Result<Fleet, RequestError> {
    let first =
        match ask(bus, source, SnapshotRequest { page: Some(0), ..Default::default() }, timeout).await? {
            Answer::Page(page) => page,
            // A controller from before paging ignores the request and sends the whole fleet.
            Answer::Whole(fleet) => return Ok(fleet),
        };
    let (rev, encoding, pages) = (first.rev, first.encoding, first.pages);
    let mut text = String::with_capacity(first.part.len().saturating_mul(pages as usize));
    text.push_str(&first.part);
    for n in 1..pages {
        let page = match ask(
            bus,
            source,
            SnapshotRequest { page: Some(n), rev: Some(rev), encoding: Some(encoding) },
            timeout,
        )
        .await?
        {
            Answer::Page(page) => page,
            Answer::Whole(_) => return Err(malformed("a whole fleet in answer to a page request".into())),
        };
        if (page.rev, page.encoding, page.page, page.pages) != (rev, encoding, n, pages) {
            return Err(malformed(format!(
                "asked for page {n}/{pages} at revision {rev}, got page {}/{} at revision {}",
                page.page, page.pages, page.rev
            )));
        }
        text.push_str(&page.part);
    }
    join(&text, rev)
}

/// Decodes the joined text of a paged snapshot at revision `rev`.
pub fn join(text: &str, rev: u64) -> Result<Fleet, RequestError> {
    let fleet: Fleet = serde_json::from_str(text).map_err(|e| malformed(format!("paged snapshot: {e}")))?;
    if fleet.revision != rev {
        return Err(malformed(format!("pages of revision {rev} hold a fleet at {}", fleet.revision)));
    }
    Ok(fleet)
}

enum Answer {
    Page(SnapshotPage),
    Whole(Fleet),
}

async fn ask(
    bus: &dyn Bus,
    source: &str,
    req: SnapshotRequest,
    timeout: Duration,
) -> Result<Answer, RequestError> {
    let bytes = encode(&Envelope::new(source, req))?;
    let answer = bus.request(subjects::CTL_SNAPSHOT, Bytes::from(bytes), timeout).await?;
    match decode::<Reply<SnapshotPage>>(&answer) {
        Ok(env) => env.body.into_result().map(Answer::Page).map_err(RequestError::Refused),
        // Only an old controller's whole fleet is worth a second decode.
        Err(page_err) => match decode::<Reply<Fleet>>(&answer) {
            Ok(env) => env.body.into_result().map(Answer::Whole).map_err(RequestError::Refused),
            Err(_) => Err(page_err.into()),
        },
    }
}

fn malformed(why: String) -> RequestError {
    RequestError::Protocol(ProtocolError::Malformed(why))
}
