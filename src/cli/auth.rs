//! `quarterdeck auth`: the users and roles nats-server enforces (src/auth).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::auth::{Grant, Identity, Role, files};

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Write DIR/nats-auth.conf (an `authorization` block for nats-server to include) and
    /// one NKey seed per user, DIR/<role>/<name>.nk, mode 0600. Give every process its own
    /// seed with --nkey FILE (or NATS_NKEY).
    Init {
        /// The directory to write; refused if it already holds users.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Controller ids (each may run as the leader or a standby).
        #[arg(long, value_delimiter = ',', default_value = "controller", value_name = "ID,...")]
        controllers: Vec<String>,
        /// Agent host ids: each agent may speak and listen only for its own host.
        #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
        hosts: Vec<String>,
        /// Router ids.
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        routers: Vec<String>,
        /// Operators: send commands, read everything, start log streams, upload artifacts.
        #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
        operators: Vec<String>,
        /// Viewers: read only, enforced by the server.
        #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
        viewers: Vec<String>,
    },
    /// Add one user and rewrite DIR/nats-auth.conf; then reload nats-server.
    Add {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// controller, agent, router, operator or viewer.
        role: Role,
        /// The host id, router id or user name.
        name: String,
        /// What an operator may do beyond its role (repeatable): exec (a shell or command
        /// in an instance's container), port-forward (TCP to an instance's port).
        #[arg(long = "grant", value_name = "GRANT")]
        grants: Vec<Grant>,
    },
    /// Give an operator grants (exec, port-forward) and rewrite DIR/nats-auth.conf; then
    /// reload nats-server.
    Grant {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// NAME, or operator/NAME.
        name: String,
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<Grant>,
    },
    /// Take grants back from an operator and rewrite DIR/nats-auth.conf; then reload
    /// nats-server.
    Revoke {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        name: String,
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<Grant>,
    },
    /// Remove one user (NAME, or ROLE/NAME when the name is in two roles) and rewrite
    /// DIR/nats-auth.conf; then reload nats-server.
    Remove {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        name: String,
    },
    /// List the users: role, name, grants, public key, seed file.
    List {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

const RELOAD: &str = "reload nats-server to apply it: `nats-server --signal reload` (or SIGHUP)";

pub fn run(args: AuthArgs) -> Result<(), String> {
    match args.command {
        AuthCommand::Init { dir, controllers, hosts, routers, operators, viewers } => {
            let mut wanted = Vec::new();
            for (role, names) in [
                (Role::Controller, controllers),
                (Role::Agent, hosts),
                (Role::Router, routers),
                (Role::Operator, operators),
                (Role::Viewer, viewers),
            ] {
                for name in names {
                    wanted.push(Identity::new(role, &name)?);
                }
            }
            init(&dir, &wanted)
        }
        AuthCommand::Add { dir, role, name, grants } => {
            let who = Identity::new(role, &name)?;
            crate::auth::roles::check_grants(role, &grants.iter().copied().collect())?;
            let user = files::add(&dir, &who)?;
            if !grants.is_empty() {
                files::set_grants(&dir, &format!("{role}/{name}"), &grants, true)?;
            }
            let conf = files::write_conf(&dir)?;
            println!(
                "added {role} {name}: seed {}; {} rewritten; {RELOAD}",
                user.seed_file.display(),
                conf.display()
            );
            Ok(())
        }
        AuthCommand::Remove { dir, name } => {
            let user = files::remove(&dir, &name)?;
            let conf = files::write_conf(&dir)?;
            println!(
                "removed {} {} ({} deleted); {} rewritten; {RELOAD}",
                user.who.role,
                user.who.name,
                user.seed_file.display(),
                conf.display()
            );
            Ok(())
        }
        AuthCommand::Grant { dir, name, grants } => regrant(&dir, &name, &grants, true),
        AuthCommand::Revoke { dir, name, grants } => regrant(&dir, &name, &grants, false),
        AuthCommand::List { dir } => {
            for u in files::users(&dir)? {
                let grants: Vec<&str> = u.grants.iter().map(|g| g.as_str()).collect();
                let grants = if grants.is_empty() { "-".to_string() } else { grants.join(",") };
                println!(
                    "{:<10} {:<24} {:<20} {} {}",
                    u.who.role,
                    u.who.name,
                    grants,
                    u.public_key,
                    u.seed_file.display()
                );
            }
            Ok(())
        }
    }
}

fn regrant(dir: &Path, name: &str, grants: &[Grant], give: bool) -> Result<(), String> {
    let user = files::set_grants(dir, name, grants, give)?;
    let conf = files::write_conf(dir)?;
    let now: Vec<&str> = user.grants.iter().map(|g| g.as_str()).collect();
    println!(
        "{} {} now holds {}; {} rewritten; {RELOAD}",
        user.who.role,
        user.who.name,
        if now.is_empty() { "no grants".to_string() } else { now.join(", ") },
        conf.display()
    );
    Ok(())
}

/// All or nothing: every name is checked before a file is written, and a directory that
/// already holds users is refused, so a second `init` never replaces deployed seeds.
fn init(dir: &Path, wanted: &[Identity]) -> Result<(), String> {
    if wanted.is_empty() {
        return Err("no users: give --hosts, --routers, --operators or --viewers".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for who in wanted {
        if !seen.insert(who) {
            return Err(format!("{} {} is given twice", who.role, who.name));
        }
    }
    if !files::users(dir)?.is_empty() {
        return Err(format!("{} already holds users: use `auth add` and `auth remove`", dir.display()));
    }
    for who in wanted {
        let user = files::add(dir, who)?;
        println!("{:<10} {:<24} {}", who.role, who.name, user.seed_file.display());
    }
    let conf = files::write_conf(dir)?;
    println!(
        "wrote {}: include it in nats-server's config (`include \"{CONF}\"` in a config file in the same \
         directory: nats-server reads include paths relative to the config file), then give each process \
         its seed with --nkey FILE",
        conf.display(),
        CONF = files::CONF
    );
    Ok(())
}
