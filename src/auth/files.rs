//! The auth directory: `DIR/<role>/<name>.nk` holds each user's NKey seed (mode 0600), and
//! `DIR/nats-auth.conf` the block rendered from them. The seeds are the list of users:
//! `add` and `remove` change the files and render the block again. An operator's grants
//! (`exec`, `port-forward`) sit beside its seed in `DIR/operator/<name>.grants`, one per
//! line, written by `grant` and `revoke`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::conf;
use super::roles::{Grant, Grants, Identity, Role, check_grants};

pub const CONF: &str = "nats-auth.conf";

/// A user on file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub who: Identity,
    pub grants: Grants,
    pub public_key: String,
    pub seed_file: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// The public key of the user seed in `file`, with a clear error for anything else.
pub fn public_key_of(file: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read NKey seed {}: {e}", file.display()))?;
    let seed = text.trim().to_string();
    if !seed.starts_with("SU") {
        return Err(format!(
            "{} does not hold an NKey user seed (one line starting with SU)",
            file.display()
        ));
    }
    let pair = nkeys::KeyPair::from_seed(&seed)
        .map_err(|e| format!("{} does not hold a valid NKey user seed: {e}", file.display()))?;
    Ok((seed, pair.public_key()))
}

/// Every user on file, by role then name.
pub fn users(dir: &Path) -> Result<Vec<User>, String> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let sub = dir.join(role.as_str());
        let entries = match std::fs::read_dir(&sub) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", sub.display())),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "nk"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let who = Identity::new(role, &name).map_err(|e| format!("{}: {e}", file.display()))?;
            let (_, public_key) = public_key_of(&file)?;
            let grants = grants_in(&file.with_extension("grants"))?;
            check_grants(role, &grants).map_err(|e| format!("{}: {e}", file.display()))?;
            out.push(User { who, grants, public_key, seed_file: file });
        }
    }
    Ok(out)
}

/// The grants in `file` (none when it is missing); an unknown grant is an error naming it.
fn grants_in(file: &Path) -> Result<Grants, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Grants::new()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse::<Grant>().map_err(|e| format!("{}: {e}", file.display())))
        .collect()
}

/// Gives (`give`) or takes back grants of the user `spec` (as `remove` names one) and
/// returns the user with the grants it now holds. Only an operator holds grants.
pub fn set_grants(dir: &Path, spec: &str, grants: &[Grant], give: bool) -> Result<User, String> {
    let mut user = find(dir, spec)?;
    for g in grants {
        if give {
            user.grants.insert(*g);
        } else {
            user.grants.remove(g);
        }
    }
    check_grants(user.who.role, &user.grants)?;
    let file = user.seed_file.with_extension("grants");
    if user.grants.is_empty() {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    } else {
        let text: String = user.grants.iter().map(|g| format!("{g}\n")).collect();
        let tmp = file.with_extension("grants.new");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &file).map_err(io(&file))?;
    }
    Ok(user)
}

/// Writes `DIR/nats-auth.conf` from the users on file, atomically (aside, then renamed).
pub fn write_conf(dir: &Path) -> Result<PathBuf, String> {
    let users: Vec<(Identity, Grants, String)> =
        users(dir)?.into_iter().map(|u| (u.who, u.grants, u.public_key)).collect();
    let path = dir.join(CONF);
    let tmp = dir.join(format!(".{CONF}.new"));
    std::fs::write(&tmp, conf::render(&users)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

/// A new user: a fresh seed in `DIR/<role>/<name>.nk`, readable by its owner only. An
/// existing user is refused, never overwritten (its seed may be deployed already).
pub fn add(dir: &Path, who: &Identity) -> Result<User, String> {
    let sub = dir.join(who.role.as_str());
    std::fs::create_dir_all(&sub).map_err(io(&sub))?;
    let file = sub.join(format!("{}.nk", who.name));
    let pair = nkeys::KeyPair::new_user();
    let seed = pair.seed().map_err(|e| format!("cannot make an NKey seed: {e}"))?;
    let mut out =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} {} exists already ({})", who.role, who.name, file.display())
            } else {
                format!("{}: {e}", file.display())
            }
        })?;
    out.write_all(format!("{seed}\n").as_bytes()).map_err(io(&file))?;
    Ok(User { who: who.clone(), grants: Grants::new(), public_key: pair.public_key(), seed_file: file })
}

/// Removes the user `spec` (`NAME`, or `ROLE/NAME` when the name is in more than one role),
/// with its grants.
pub fn remove(dir: &Path, spec: &str) -> Result<User, String> {
    let one = find(dir, spec)?;
    std::fs::remove_file(&one.seed_file).map_err(io(&one.seed_file))?;
    let grants = one.seed_file.with_extension("grants");
    match std::fs::remove_file(&grants) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", grants.display())),
    }
    Ok(one)
}

/// The one user `spec` names: `NAME`, or `ROLE/NAME` when the name is in more than one role.
fn find(dir: &Path, spec: &str) -> Result<User, String> {
    let (role, name) = match spec.split_once('/') {
        Some((r, n)) => (Some(r.parse::<Role>()?), n),
        None => (None, spec),
    };
    let found: Vec<User> = users(dir)?
        .into_iter()
        .filter(|u| u.who.name == name && role.is_none_or(|r| r == u.who.role))
        .collect();
    match found.as_slice() {
        [] => Err(format!("no user {} in {}", crate::protocol::validate::quoted(spec), dir.display())),
        [one] => Ok(one.clone()),
        many => Err(format!(
            "{name} is a user in {} roles ({}): say which, e.g. {}/{name}",
            many.len(),
            many.iter().map(|u| u.who.role.as_str()).collect::<Vec<_>>().join(", "),
            many[0].who.role
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qd-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn seeds_are_private_users_are_listed_and_the_conf_follows_them() {
        let d = dir("files");
        let h1 = add(&d, &Identity::new(Role::Agent, "h1").unwrap()).unwrap();
        add(&d, &Identity::new(Role::Operator, "alice").unwrap()).unwrap();
        add(&d, &Identity::new(Role::Viewer, "alice").unwrap()).unwrap();
        let mode = std::fs::metadata(&h1.seed_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(add(&d, &Identity::new(Role::Agent, "h1").unwrap()).unwrap_err().contains("exists already"));
        assert_eq!(public_key_of(&h1.seed_file).unwrap().1, h1.public_key);
        let conf = std::fs::read_to_string(write_conf(&d).unwrap()).unwrap();
        assert!(conf.contains(&h1.public_key) && conf.contains("# viewer alice"));
        assert!(remove(&d, "alice").unwrap_err().contains("operator/alice"));
        remove(&d, "viewer/alice").unwrap();
        assert!(remove(&d, "nobody").unwrap_err().contains("no user"));
        let left: Vec<String> =
            users(&d).unwrap().iter().map(|u| format!("{}/{}", u.who.role, u.who.name)).collect();
        assert_eq!(left, ["agent/h1", "operator/alice"]);
        let alice = set_grants(&d, "alice", &[Grant::Exec, Grant::PortForward], true).unwrap();
        assert_eq!(alice.grants.len(), 2);
        let alice = set_grants(&d, "alice", &[Grant::PortForward], false).unwrap();
        assert_eq!(alice.grants, [Grant::Exec].into_iter().collect());
        assert_eq!(users(&d).unwrap()[1].grants, alice.grants, "kept on file");
        let conf = std::fs::read_to_string(write_conf(&d).unwrap()).unwrap();
        assert!(conf.contains("qd.v1.agent.*.exec.alice.>") && !conf.contains("qd.v1.agent.*.fwd.alice.>"));
        assert!(set_grants(&d, "h1", &[Grant::Exec], true).unwrap_err().contains("only operators"));
        std::fs::write(d.join("operator/alice.grants"), "exec\nsudo\n").unwrap();
        assert!(users(&d).unwrap_err().contains("\"sudo\" is not a grant"));
        std::fs::write(d.join("operator/alice.grants"), "# given by hand\nexec\n").unwrap();
        remove(&d, "alice").unwrap();
        assert!(!d.join("operator/alice.grants").exists(), "grants go with their user");
        std::fs::write(d.join("agent/bad.nk"), "not a seed").unwrap();
        assert!(users(&d).unwrap_err().contains("does not hold an NKey user seed"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
