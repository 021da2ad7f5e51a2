//! Image references, as Docker reads them: `[registry/]path[:tag][@sha256:<64 hex>]`.
//! The controller resolves a registry's tag to a digest once per deploy, and every
//! instance of that deploy runs `repository@digest`; this is where a reference is taken
//! apart for that. Pure.

use super::validate::quoted;

/// The most bytes of a reference, tag and digest included.
pub const MAX_IMAGE: usize = 255;
const MAX_TAG: usize = 128;
const DIGEST_PREFIX: &str = "sha256:";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` when the reference names a registry; `None` for a name such as
    /// `nginx:1`, which only a host that has it loaded runs.
    pub registry: Option<String>,
    /// Everything before the tag and digest, the registry included.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 lowercase hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Reads a reference, saying which part is wrong.
    pub fn parse(value: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| Err(format!("image {} is not a valid image reference: {why}", quoted(value)));
        if value.is_empty() || value.len() > MAX_IMAGE {
            return bad(&format!("use 1-{MAX_IMAGE} characters"));
        }
        if !value.chars().all(|c| c.is_ascii_graphic()) {
            return bad("no spaces or control characters");
        }
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => {
                if let Err(why) = check_digest(digest) {
                    return bad(&why);
                }
                (rest, Some(digest.to_string()))
            }
            None => (value, None),
        };
        // A tag follows the last ':' after the last '/', so a registry's port is not one.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[slash..].find(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = (1..=MAX_TAG).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return bad(&format!("the tag {} must be 1-{MAX_TAG} of A-Z a-z 0-9 _ . -", quoted(tag)));
            }
        }
        let mut parts: Vec<&str> = repository.split('/').collect();
        // Docker's rule: the first part names a registry when it has a '.' or a ':', or is
        // `localhost`.
        let registry = match parts.as_slice() {
            [first, _, ..] if first.contains(['.', ':']) || *first == "localhost" => {
                if let Err(why) = check_registry(first) {
                    return bad(&why);
                }
                Some(parts.remove(0).to_string())
            }
            _ => None,
        };
        for part in &parts {
            if !path_component(part) {
                return bad(&format!(
                    "the name part {} must be lowercase letters and digits, joined by '.', '_', '__' or '-'",
                    quoted(part)
                ));
            }
        }
        Ok(ImageRef { registry, repository: repository.to_string(), tag: tag.map(str::to_string), digest })
    }

    /// Whether the reference names a registry, so hosts can pull it and its tag can be
    /// resolved to a digest.
    pub fn from_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// The same image pinned to `digest`: `repository@digest`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository)
    }

    /// What Docker's pull takes: the repository, and the digest or else the tag
    /// (`latest` when none is given; an empty tag would pull every tag).
    pub fn pull_args(&self) -> (String, String) {
        let which = self.digest.clone().or_else(|| self.tag.clone()).unwrap_or_else(|| "latest".into());
        (self.repository.clone(), which)
    }
}

/// `sha256:` and 64 lowercase hex digits: the only digest a registry gives here.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest.strip_prefix(DIGEST_PREFIX).unwrap_or("");
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        Ok(())
    } else {
        Err(format!("the digest {} must be sha256: and 64 lowercase hex digits", quoted(digest)))
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0) && !p.starts_with('0'));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!("the registry {} must be host or host:port (port 1-65535)", quoted(registry)))
    }
}

/// `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn path_component(part: &str) -> bool {
    let mut prev_alnum = false;
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            prev_alnum = true;
            i += 1;
            continue;
        }
        if !prev_alnum {
            return false;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == c).count();
        let ok = match c {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
        i += run;
        prev_alnum = false;
    }
    prev_alnum
}

/// A pull's progress, which a `PULL_IMAGE` step's detail says first: `N of M bytes`, the
/// bytes fetched and those expected so far (the total grows as Docker learns of layers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullBytes {
    pub done: u64,
    pub total: u64,
}

impl PullBytes {
    pub fn in_words(self) -> String {
        format!("{} of {} bytes", self.done, self.total)
    }

    /// The progress at the start of `detail`, if it says one (a failed pull's detail is
    /// the registry's answer instead).
    pub fn parse(detail: &str) -> Option<PullBytes> {
        let mut words = detail.split_whitespace();
        let done = words.next()?.parse().ok()?;
        (words.next()? == "of").then_some(())?;
        let total = words.next()?.parse().ok()?;
        words.next()?.starts_with("bytes").then_some(PullBytes { done, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_pulls_bytes_are_read_back_from_its_detail() {
        let bytes = PullBytes { done: 1_048_576, total: 2_097_951 };
        let detail = format!("{}, 2 layer(s) pulled of 127.0.0.1:5000/shop/web", bytes.in_words());
        assert_eq!(PullBytes::parse(&detail), Some(bytes));
        assert_eq!(PullBytes::parse("0 of 0 bytes"), Some(PullBytes::default()));
        for other in
            ["", "manifest unknown", "12 of bytes", "12 of 40 layers", "x of 4 bytes", "-1 of 4 bytes"]
        {
            assert_eq!(PullBytes::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn names_tags_registries_and_digests_are_taken_apart() {
        let r = ImageRef::parse("tomcat:8").expect("plain");
        assert_eq!(
            (r.registry.as_deref(), r.repository.as_str(), r.tag.as_deref()),
            (None, "tomcat", Some("8"))
        );
        assert!(!r.from_registry());
        let r = ImageRef::parse("127.0.0.1:5000/qd-test/app:1").expect("registry with port");
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "127.0.0.1:5000/qd-test/app");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.pinned(DIGEST), format!("127.0.0.1:5000/qd-test/app@{DIGEST}"));
        assert_eq!(r.pull_args(), ("127.0.0.1:5000/qd-test/app".into(), "1".into()));
        let r = ImageRef::parse(&format!("registry.example.com/app@{DIGEST}")).expect("digest");
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(DIGEST)));
        assert_eq!(r.pull_args().1, DIGEST);
        let r = ImageRef::parse("localhost/app").expect("localhost");
        assert_eq!(r.registry.as_deref(), Some("localhost"));
        assert_eq!(r.pull_args().1, "latest", "no tag pulls latest, never every tag");
        let r = ImageRef::parse("quarterdeck-test/httpd").expect("a path without a registry");
        assert_eq!(r.registry, None);
        let r = ImageRef::parse(&format!("reg:5000/a/b:v1.2@{DIGEST}")).expect("tag and digest");
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (Some("v1.2"), Some(DIGEST)));
        assert!(ImageRef::parse("a__b-c---d/e.f").is_ok(), "separators inside a name");
    }

    #[test]
    fn a_bad_reference_says_which_part_is_wrong() {
        let err = |v: &str| ImageRef::parse(v).expect_err(v);
        assert!(err("").contains("1-255"));
        assert!(err("bad image").contains("spaces"));
        assert!(err("app@sha256:abc").contains("64 lowercase hex"));
        assert!(err(&format!("app@{}", DIGEST.to_uppercase())).contains("digest"));
        assert!(err("app:").contains("tag"));
        assert!(err("app:-x").contains("tag"));
        assert!(err("Tomcat:8").contains("name part"));
        assert!(err("a..b").contains("name part"));
        assert!(err("a___b").contains("name part"));
        assert!(err("app/").contains("name part"));
        assert!(err("reg:99999/app").contains("registry"));
        assert!(err("reg:0/app").contains("registry"));
        assert!(err("-reg.x/app").contains("registry"));
        assert!(err(&"a".repeat(256)).contains("1-255"));
    }
}
