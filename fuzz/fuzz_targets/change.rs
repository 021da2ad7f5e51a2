//! A `Change` on its own, through `change_de.rs`: the fast path (its `type` first, as
//! every sender writes it) and the slow path (`type` anywhere else, as JSON allows) must
//! read the same change from the same object, and refuse the same objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{Change, Fleet};
use quarterdeck_fuzz::round_trip;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // As `protocol::decode` reads: the text is checked to be UTF-8 first (serde_json skips
    // the strings of unknown fields without checking them).
    let Ok(text) = std::str::from_utf8(data) else { return };
    let direct = serde_json::from_str::<Change>(text);
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        if let Ok(change) = &direct {
            panic!("a change read from something that is not a JSON object: {change:?}");
        }
        return;
    };
    // The same object written with `type` first, then last: one of them takes each path.
    // Written by hand: a `Map` keeps its keys sorted, not in the order given.
    let field = |k: &String, v: &Value| format!("{}:{}", Value::String(k.clone()), v);
    let rest: Vec<String> = object.iter().filter(|(k, _)| *k != "type").map(|(k, v)| field(k, v)).collect();
    let tag: Vec<String> = object.get_key_value("type").map(|(k, v)| field(k, v)).into_iter().collect();
    let first = format!("{{{}}}", tag.iter().chain(&rest).cloned().collect::<Vec<_>>().join(","));
    let last = format!("{{{}}}", rest.iter().chain(&tag).cloned().collect::<Vec<_>>().join(","));
    let fast = serde_json::from_str::<Change>(&first);
    let slow = serde_json::from_str::<Change>(&last);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the tag's place changed the change:\n{first}\n{last}"),
        (Err(_), Err(_)) => {}
        _ => panic!("the tag's place decided whether it reads:\n{first} -> {fast:?}\n{last} -> {slow:?}"),
    }
    if let Ok(change) = fast {
        round_trip(&change);
        let mut fleet = Fleet::default();
        let _ = fleet.try_apply_change(&change);
        round_trip(&fleet);
    }
});
