//! The paged snapshot, chosen by the first byte: a page as a client decodes it (or a whole
//! fleet from an old controller), the joined text of the pages (`client::snapshot::join`),
//! and the cutting of a text into pages, which must put it back together exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::client::snapshot::join;
use quarterdeck::protocol::{Fleet, Reply, SnapshotPage, decode, snapshot_cuts, snapshot_part};
use quarterdeck_fuzz::{envelope_round_trip, round_trip, split};

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    match selector % 3 {
        0 => {
            if let Ok(env) = decode::<Reply<SnapshotPage>>(payload) {
                envelope_round_trip(&env);
                if let Reply::Ok(page) = &env.body
                    && page.pages == 1
                    && page.page == 0
                    && let Ok(fleet) = join(&page.part, page.rev)
                {
                    assert_eq!(fleet.revision, page.rev);
                }
            } else if let Ok(env) = decode::<Reply<Fleet>>(payload) {
                envelope_round_trip(&env);
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(payload) else { return };
            if let Ok(fleet) = join(text, 7) {
                assert_eq!(fleet.revision, 7, "a fleet at another revision was taken");
                round_trip(&fleet);
            }
        }
        _ => {
            // The first two bytes say how long a part may be; the rest is the text.
            let Some((&[a, b], rest)) = payload.split_first_chunk::<2>() else { return };
            let max_part = usize::from(u16::from_le_bytes([a, b]));
            let text = String::from_utf8_lossy(rest);
            let cuts = snapshot_cuts(&text, max_part);
            assert_eq!(cuts.last().copied(), Some(text.len()), "the last page ends the text");
            assert!(cuts.windows(2).all(|w| w[0] < w[1]), "pages move on: {cuts:?}");
            let mut joined = String::new();
            for page in 0..cuts.len() {
                let part = snapshot_part(&text, &cuts, page).expect("every page up to the count exists");
                assert!(
                    part.len() <= max_part.max(4),
                    "a part of {} bytes, more than {max_part}",
                    part.len()
                );
                joined.push_str(part);
            }
            assert!(snapshot_part(&text, &cuts, cuts.len()).is_none(), "a page past the last");
            assert_eq!(joined, text, "the pages do not join to the text");
        }
    }
});
