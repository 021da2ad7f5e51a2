//! Host diagnostics from the original system's ops problems: the storage driver, and the
//! devicemapper traps (loop devices; online discard, fixed with `dm.blkdiscard=false` and
//! `dm.mountopt=nodiscard`). The cockpit shows them as host warnings.

use bollard::models::SystemInfo;

/// Warnings for this engine, read once at connect.
pub fn diagnose(info: &SystemInfo) -> Vec<String> {
    let driver = info.driver.clone().unwrap_or_default();
    let status: Vec<(String, String)> = info
        .driver_status
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| match kv.as_slice() {
            [k, v, ..] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect();
    // Only devicemapper's warnings need the daemon's options; skip the /proc scan otherwise.
    let opts = if driver == "devicemapper" { daemon_storage_opts() } else { Vec::new() };
    storage_warnings(&driver, &status, &opts)
}

/// The warnings for a storage driver, its `docker info` status pairs and the daemon's
/// `--storage-opt` values. Empty when all is well.
pub fn storage_warnings(driver: &str, status: &[(String, String)], storage_opts: &[String]) -> Vec<String> {
    let get = |key: &str| status.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let opt = |key: &str| {
        storage_opts
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_ascii_lowercase)
    };
    let mut out = Vec::new();
    match driver {
        "devicemapper" => {
            let loop_file = get("Data loop file")
                .or(get("Metadata loop file"))
                .or(get("Data file").filter(|f| f.starts_with("/dev/loop")));
            if let Some(file) = loop_file {
                out.push(format!(
                    "storage driver devicemapper runs on loop devices ({file}): slow and fragile; \
                     use direct-lvm (dm.thinpooldev)"
                ));
            }
            // Docker discards blocks on removal by default on loop devices only.
            let blkdiscard = match opt("dm.blkdiscard").as_deref() {
                Some("false" | "0") => false,
                Some(_) => true,
                None => loop_file.is_some(),
            };
            if blkdiscard {
                out.push(
                    "storage driver devicemapper discards blocks when removing containers \
                     (dm.blkdiscard): removals can stall the engine; set --storage-opt dm.blkdiscard=false"
                        .into(),
                );
            }
            let nodiscard = opt("dm.mountopt").is_some_and(|m| m.split(',').any(|o| o == "nodiscard"));
            if !nodiscard {
                out.push(
                    "storage driver devicemapper mounts with online discard: deletes slow the disk \
                     under load; set --storage-opt dm.mountopt=nodiscard"
                        .into(),
                );
            }
        }
        "overlay" | "overlay2" if get("Supports d_type") == Some("false") => out.push(format!(
            "storage driver {driver} on a file system without d_type: unsupported, files may vanish"
        )),
        "vfs" => out.push("storage driver vfs copies every layer: slow and disk-hungry".into()),
        "aufs" => out.push("storage driver aufs is deprecated; move to overlay2".into()),
        _ => {}
    }
    out
}

/// `--storage-opt` values from dockerd's command line and /etc/docker/daemon.json.
fn daemon_storage_opts() -> Vec<String> {
    let mut opts = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/docker/daemon.json")
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(list) = json.get("storage-opts").and_then(|v| v.as_array())
    {
        opts.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    let Ok(procs) = std::fs::read_dir("/proc") else { return opts };
    for p in procs.flatten() {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        if comm.trim() != "dockerd" {
            continue;
        }
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> =
            cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        for (i, a) in args.iter().enumerate() {
            if let Some(v) = a.strip_prefix("--storage-opt=") {
                opts.push(v.to_string());
            } else if a == "--storage-opt"
                && let Some(v) = args.get(i + 1)
            {
                opts.push(v.clone());
            }
        }
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn overlay2_is_fine() {
        assert!(storage_warnings("overlay2", &kv(&[("Supports d_type", "true")]), &[]).is_empty());
    }

    #[test]
    fn devicemapper_on_loop_devices_with_discard_is_flagged_three_ways() {
        let status = kv(&[("Data loop file", "/var/lib/docker/devicemapper/devicemapper/data")]);
        let w = storage_warnings("devicemapper", &status, &[]);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("loop devices"));
        assert!(w[1].contains("dm.blkdiscard=false"));
        assert!(w[2].contains("nodiscard"));
    }

    #[test]
    fn devicemapper_with_the_fix_applied_is_quiet() {
        let status = kv(&[("Pool Name", "docker-thinpool")]);
        let opts = vec!["dm.thinpooldev=/dev/mapper/docker-thinpool".into(), "dm.mountopt=nodiscard".into()];
        assert!(storage_warnings("devicemapper", &status, &opts).is_empty());
        let on = vec!["dm.blkdiscard=true".to_string(), "dm.mountopt=nodiscard".into()];
        assert_eq!(storage_warnings("devicemapper", &status, &on).len(), 1);
    }
}
