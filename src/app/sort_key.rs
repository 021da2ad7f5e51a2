//! What a table's cells sort by, and in which order: numbers as numbers, `a/b` pairs as
//! shown, versions (1.10 after 1.9, a pre-release before its release) and text in
//! natural order (`host-10` after `host-9`).

use std::borrow::Cow;
use std::cmp::Ordering;

/// What a cell sorts by. Borrowed where the row's data holds it, so a frame's visible
/// rows cost no copy for keys they never sort by; the row cache keeps owned ones.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey<'a> {
    /// Nothing to sort by (`-`): before every value.
    Missing,
    Num(f64),
    /// `a/b` as shown (`3/5`, `512/1024M`): by `a`, then by `b`.
    Pair(f64, f64),
    /// A version: dot-separated numbers compare as numbers (1.10 after 1.9), and a
    /// pre-release (`2.0.0-rc1`) comes before its release.
    Version(Cow<'a, str>),
    /// Text, ASCII case ignored: runs of digits compare as numbers (`host-10` after
    /// `host-9`).
    Text(Cow<'a, str>),
    /// The cell's text as shown (`Text`, or `Missing` for `-` and nothing): made one of
    /// those when the row is kept (`Row::keys`).
    Shown,
}

/// The order of two sort keys: `Missing` first, then numbers, versions and text. Keys
/// of one column are of one kind (or missing).
pub fn compare(a: &SortKey<'_>, b: &SortKey<'_>) -> Ordering {
    use SortKey::*;
    let rank = |k: &SortKey<'_>| match k {
        Missing => 0,
        Num(_) | Pair(..) => 1,
        Version(_) => 2,
        Text(_) | Shown => 3,
    };
    let f = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    match (a, b) {
        (Num(x), Num(y)) => f(*x, *y),
        (Pair(x1, x2), Pair(y1, y2)) => f(*x1, *y1).then(f(*x2, *y2)),
        (Num(x), Pair(y, _)) => f(*x, *y),
        (Pair(x, _), Num(y)) => f(*x, *y),
        (Version(x), Version(y)) => compare_versions(x, y),
        (Text(x), Text(y)) => natural(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `1.9 < 1.10`, `2.0.0-rc1 < 2.0.0`, `v2 < v10`.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v| match str::split_once(v, '-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    };
    let ((ca, pa), (cb, pb)) = (split(a), split(b));
    natural(ca, cb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => natural(x, y),
    })
}

/// Natural order: runs of ASCII digits compare by their value, the rest byte by byte with
/// ASCII case ignored (compared in place: a sort makes many comparisons per row).
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (n, m) = (run(x), run(y));
                let strip = |s: &[u8]| s.iter().take_while(|c| **c == b'0').count();
                let (dx, dy) = (&x[strip(&x[..n]).min(n)..n], &y[strip(&y[..m]).min(m)..m]);
                // Without leading zeros, the longer run is the larger number.
                let o = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy)).then_with(|| n.cmp(&m));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                let (c, d) = (c.to_ascii_lowercase(), d.to_ascii_lowercase());
                if c != d {
                    return c.cmp(&d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_text_and_versions_sort_as_numbers() {
        assert_eq!(natural("host-9", "host-10"), Ordering::Less);
        assert_eq!(natural("a2", "a02"), Ordering::Less);
        assert_eq!(natural("abc", "abd"), Ordering::Less);
        assert_eq!(natural("ABC", "abd"), Ordering::Less);
        assert_eq!(natural("Host-2", "host-2"), Ordering::Equal);
        assert_eq!(natural("", "a"), Ordering::Less);
        assert_eq!(compare_versions("1.9", "1.10"), Ordering::Less);
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare_versions("2.0.0-rc1", "2.0.0"), Ordering::Less);
        assert_eq!(compare_versions("2.0.0-rc2", "2.0.0-rc10"), Ordering::Less);
        assert_eq!(compare_versions("1.2.3", "1.2.3"), Ordering::Equal);
        // A digit run longer than any integer still compares.
        assert_eq!(natural("99999999999999999999999", "100000000000000000000000"), Ordering::Less);
    }

    #[test]
    fn keys_compare_missing_first_then_by_value() {
        let k = |v: f64| SortKey::Num(v);
        assert_eq!(compare(&k(2.0), &k(10.0)), Ordering::Less);
        assert_eq!(compare(&SortKey::Missing, &k(-1.0)), Ordering::Less);
        assert_eq!(compare(&SortKey::Pair(3.0, 5.0), &SortKey::Pair(3.0, 4.0)), Ordering::Greater);
        assert_eq!(compare(&SortKey::Text("b".into()), &SortKey::Missing), Ordering::Greater);
        assert_eq!(compare(&k(f64::NAN), &k(1.0)), Ordering::Equal);
    }
}

#[cfg(test)]
#[path = "sort_key_tests.rs"]
mod headless_tests;
