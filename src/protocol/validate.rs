//! Validation of the names and values that travel in commands. The controller checks every
//! command with these, and clients check them first so that people see the error at once.

use std::net::Ipv4Addr;

/// An app, host or AZ name: 1–63 of `a-z 0-9 -`, starting with a letter or digit. It goes
/// into subjects, container names and load balancer config, so nothing else is allowed.
pub fn name(what: &str, value: &str) -> Result<(), String> {
    let ok_len = (1..=63).contains(&value.len());
    let ok_chars = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_start = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} is not valid: use 1-63 lowercase letters, digits or '-', starting with a letter or digit"
        ))
    }
}

/// A version label such as `1.4.2` or `2026-11-25.1`: 1–40 of `A-Z a-z 0-9 . _ + -`.
pub fn version(value: &str) -> Result<(), String> {
    let ok = (1..=40).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("version {value:?} is not valid: use 1-40 letters, digits, '.', '_', '+' or '-'"))
    }
}

/// A load balancer backend: an IPv4 address and a port from 1 to 65535.
pub fn backend(value: &str) -> Result<(Ipv4Addr, u16), String> {
    let err = || format!("backend {value:?} is not valid: expected IPv4:PORT, e.g. 10.101.1.31:8080");
    let (ip, port) = value.rsplit_once(':').ok_or_else(err)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
    let port: u16 = port.parse().map_err(|_| err())?;
    if port == 0 {
        return Err(format!("backend {value:?} is not valid: port 0 cannot serve"));
    }
    Ok((ip, port))
}

/// A DNS domain for an app's virtual host: labels of `a-z 0-9 -` joined by dots.
pub fn domain(value: &str) -> Result<(), String> {
    let labels_ok = value.split('.').all(|l| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if (1..=253).contains(&value.len()) && labels_ok {
        Ok(())
    } else {
        Err(format!(
            "domain {value:?} is not valid: use dot-separated labels of lowercase letters, digits or '-'"
        ))
    }
}

/// A tag: the same rules as a name.
pub fn tag(value: &str) -> Result<(), String> {
    name("tag", value)
}

/// A container image reference: no whitespace or control characters, 1–255 long.
pub fn image(value: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_graphic())
        && !value.starts_with('-');
    if ok { Ok(()) } else { Err(format!("image {value:?} is not a valid image reference")) }
}

/// A memory size in MB: `512`, `512M`, `512MB`, `2G`, `2GiB`.
pub fn memory_mb(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 = num.parse().map_err(|_| format!("{s:?} is not a memory size: use e.g. 512M or 2G"))?;
    let mb = match unit {
        "" | "M" | "MB" | "MIB" => Some(value),
        "G" | "GB" | "GIB" => value.checked_mul(1024),
        "K" | "KB" | "KIB" => Some(value / 1024),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use K, M or G")),
    };
    match mb {
        Some(mb) if mb >= 4 => Ok(mb),
        _ => Err(format!("{s:?} is not a usable memory limit: at least 4M")),
    }
}

/// CPU cores: a positive number up to 256, e.g. `0.5`.
pub fn cpu(s: &str) -> Result<f32, String> {
    let v: f32 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of CPU cores, e.g. 0.5"))?;
    if v.is_finite() && v > 0.0 && v <= 256.0 {
        Ok(v)
    } else {
        Err(format!("{s} cores is out of range: use more than 0, at most 256"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_anything_that_could_escape_a_subject_or_config() {
        assert!(name("app", "shop-web").is_ok());
        for bad in ["", "Shop", "a.b", "a b", "a;b", "-a", "a{b}", &"x".repeat(64)] {
            assert!(name("app", bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn backends_need_ipv4_and_a_real_port() {
        assert!(backend("10.101.1.31:8080").is_ok());
        for bad in ["10.101.1.31", "10.101.1.31:0", "10.101.1.300:80", "host:80", ":80", "1.2.3.4:70000"] {
            assert!(backend(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn domains_refuse_spaces_and_braces() {
        assert!(domain("shop-web.local").is_ok());
        for bad in ["", "a b.local", "a{}.local", "a..b", "-a.local", "a;.local"] {
            assert!(domain(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn versions_and_images() {
        assert!(version("1.4.2").is_ok());
        assert!(version("1 4").is_err());
        assert!(image("tomcat:8").is_ok());
        assert!(image("bad image").is_err());
    }
}
