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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::bus::{self, LocalBus};
    use crate::plane::fixture::fixture;
    use crate::protocol::{snapshot_cuts, snapshot_part};

    /// Serves `fleet` in parts of 300 bytes. The first `refuse` requests for a page past 0
    /// are refused with `conflict`, as when the controller has moved on. Counts reads.
    async fn serve(bus: Arc<LocalBus>, fleet: Fleet, refuse: usize) -> Arc<AtomicUsize> {
        let starts = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe(subjects::CTL_SNAPSHOT).await.unwrap();
        let counted = starts.clone();
        tokio::spawn(async move {
            let text = serde_json::to_string(&fleet).unwrap();
            let cuts = snapshot_cuts(&text, 300);
            let mut refused = 0;
            while let Some(msg) = sub.next().await {
                let req = decode::<SnapshotRequest>(&msg.payload).unwrap().body;
                let page = req.page.unwrap();
                if page == 0 {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let answer = if page > 0 && refused < refuse {
                    refused += 1;
                    Err(WireError::new(ErrorCode::Conflict, "the snapshot moved on"))
                } else {
                    Ok(SnapshotPage {
                        rev: fleet.revision,
                        encoding: 1,
                        page,
                        pages: cuts.len() as u32,
                        part: snapshot_part(&text, &cuts, page as usize).unwrap().to_string(),
                    })
                };
                bus::respond(bus.as_ref(), &msg, "controller", &Reply::from(answer)).await.unwrap();
            }
        });
        starts
    }

    #[tokio::test]
    async fn a_read_that_is_refused_midway_starts_again_from_page_0() {
        let (fleet, _) = fixture(11, 5, 20);
        let bus = Arc::new(LocalBus::new());
        let starts = serve(bus.clone(), fleet.clone(), 2).await;
        let got = fetch_fleet(bus.as_ref(), "test", Duration::from_secs(5)).await.unwrap();
        assert_eq!(got, fleet);
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_snapshot_that_never_holds_still_is_a_clear_error() {
        let (fleet, _) = fixture(11, 5, 20);
        let bus = Arc::new(LocalBus::new());
        let starts = serve(bus.clone(), fleet, usize::MAX).await;
        let err = fetch_fleet(bus.as_ref(), "test", Duration::from_secs(5)).await.unwrap_err();
        match err {
            RequestError::Refused(w) => {
                assert_eq!(w.code, ErrorCode::Conflict);
                assert!(w.reason.contains("gave up after 5 fresh starts"), "{w}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(starts.load(Ordering::SeqCst), MAX_RESTARTS + 1);
    }
}
