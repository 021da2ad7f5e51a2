//! The `--nats` value: one server URL or a comma-separated list of them (the nodes of a
//! NATS cluster). async-nats takes a list, but reads a plain string as one URL, so a list
//! given as text would fail with a confusing "invalid URL"; it is split and checked here,
//! naming the entry that is wrong.

use async_nats::ServerAddr;

/// Parses `nats://a:4222,nats://b:4222` (spaces around entries allowed; `host:port`
/// without a scheme means `nats://`) into the servers to connect to, in the given order.
pub fn parse_list(text: &str) -> Result<Vec<ServerAddr>, String> {
    let entries: Vec<&str> = text.split(',').map(str::trim).collect();
    let count = entries.len();
    let mut servers = Vec::with_capacity(count);
    for (i, entry) in entries.into_iter().enumerate() {
        let which = match count {
            1 => "the NATS URL".to_string(),
            _ => format!("entry {} of {count} in the NATS URL list '{text}'", i + 1),
        };
        if entry.is_empty() {
            return Err(format!("{which} is empty (give nats://HOST:PORT, several separated by commas)"));
        }
        let addr: ServerAddr =
            entry.parse().map_err(|e| format!("{which}, '{entry}', is not a NATS URL: {e}"))?;
        servers.push(addr);
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url() {
        let servers = parse_list("nats://127.0.0.1:4222").unwrap();
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].host(), "127.0.0.1");
        assert_eq!(servers[0].port(), 4222);
    }

    #[test]
    fn a_list_in_order_with_spaces_and_bare_host_ports() {
        let servers = parse_list("nats://127.0.0.1:4222, 127.0.0.1:4223 ,tls://127.0.0.1:4224").unwrap();
        let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert!(servers[2].tls_required());
    }

    #[test]
    fn an_empty_entry_is_named() {
        let e = parse_list("nats://127.0.0.1:4222,,nats://127.0.0.1:4224").unwrap_err();
        assert!(e.contains("entry 2 of 3"), "{e}");
        assert!(e.contains("is empty"), "{e}");
        let e = parse_list("").unwrap_err();
        assert!(e.starts_with("the NATS URL is empty"), "{e}");
        let e = parse_list("nats://127.0.0.1:4222,").unwrap_err();
        assert!(e.contains("entry 2 of 2"), "{e}");
    }

    #[test]
    fn a_bad_entry_is_named_with_the_reason() {
        let e = parse_list("nats://127.0.0.1:4222,http://127.0.0.1:4223").unwrap_err();
        assert!(e.contains("entry 2 of 2"), "{e}");
        assert!(e.contains("'http://127.0.0.1:4223'"), "{e}");
        assert!(e.contains("scheme"), "{e}");
        let e = parse_list("nats://127.0.0.1:notaport").unwrap_err();
        assert!(e.starts_with("the NATS URL, 'nats://127.0.0.1:notaport', is not a NATS URL"), "{e}");
    }
}
