//! `ctl env` and `ctl secret`: an app's env variables and secrets. Each change is a deploy
//! of the app's running version and count with the changed map (`RunPatch.env` or
//! `.secrets`), or, for a secret's value, a `secret.set` command whose controller writes
//! the value and then deploys the same way: one roll-out path, followed by `--wait` as a
//! deploy is. A secret's value is read from stdin or `@FILE`, never from the command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::{Ctl, WaitArgs, print_table};
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{AppSpec, DeployRequest, RunPatch, SecretSetRequest, Strategy, validate};

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Set env variables (`K=V`, repeat for more) and roll the app out again with them:
    /// the running version and instance count, one instance at a time.
    Set {
        /// The app.
        app: String,
        /// `NAME=value`; a name is letters, digits and '_', not starting with a digit.
        #[arg(required = true, value_name = "K=V")]
        vars: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Remove env variables by name and roll the app out again without them.
    Unset {
        /// The app.
        app: String,
        /// The variables' names.
        #[arg(required = true, value_name = "K")]
        names: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// The app's env variables with their values, and its secrets by name, version and the
    /// first 8 hex characters of the value's sha256 (never the value).
    List {
        /// The app.
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set secret K of APP, then roll the app out with it. The value is typed at a hidden
    /// prompt (no echo; Enter ends it, Backspace edits, Ctrl-C or Esc cancels with exit
    /// 130) when stdin is a terminal, else read from stdin
    /// (`printf %s "$PW" | quarterdeck ctl secret set shop DB_PASS`), or from a file
    /// (`@path`); never from the command line, where it would stay in the shell's history
    /// and show in every `ps`. One trailing newline is dropped. Stored in the `qd_secrets`
    /// bucket, which only the controller and the agents may read; everything else (events,
    /// the audit trail, snapshots, the cockpit, --json) shows its name, version and sha8.
    Set {
        /// The app.
        app: String,
        /// The secret's name, as the container sees it: letters, digits and '_'.
        name: String,
        /// `@FILE` to read the value from a file; without it, stdin (a hidden prompt on a
        /// terminal).
        #[arg(value_name = "@FILE")]
        from: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop passing secret K to APP's containers, and roll the app out without it. Its
    /// stored versions stay, for a rollback to a release that had it.
    Unset {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// The `--env K=V` flags of `ctl deploy` as the app's whole env, each checked as the
/// controller checks it.
pub fn env_flags(flags: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for f in flags {
        let (k, v) = validate::env_assignment(f).map_err(|e| format!("--env: {e}"))?;
        vars.insert(k, v);
    }
    validate::env(&vars).map_err(|e| format!("--env: {e}"))?;
    Ok(vars)
}

/// A secret's value from `@FILE` or stdin, with one trailing newline dropped; typed at a
/// hidden prompt when stdin is a terminal. `None`: the operator cancelled the prompt.
fn read_value(name: &str, from: Option<&str>) -> Result<Option<String>, String> {
    let raw = match from {
        Some(arg) => {
            let Some(path) = arg.strip_prefix('@') else {
                return Err("a secret's value is never taken from the command line (it would stay in the \
                     shell's history and show in `ps`): pipe it on stdin or give @FILE"
                    .into());
            };
            std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => {
            use std::io::{IsTerminal, Read};
            if std::io::stdin().is_terminal() {
                return crate::cli::hidden::read(&format!("value for {name} (hidden): "));
            }
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("cannot read stdin: {e}"))?;
            buf
        }
    };
    let mut value = String::from_utf8(raw).map_err(|_| "a secret's value must be UTF-8 text".to_string())?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(Some(value))
}

/// A deploy of `app` as it runs, with `run` changed: what every env and secret change is.
fn redeploy(app: &AppSpec, run: RunPatch) -> DeployRequest {
    DeployRequest {
        app: app.name.clone(),
        version: app.version.clone(),
        instances: app.instances,
        image: None,
        port: None,
        constraints: None,
        domain: None,
        tags: None,
        run: Some(run),
        strategy: Strategy::Rolling,
    }
}

impl Ctl {
    async fn app(&self, name: &str) -> Result<AppSpec, String> {
        validate::name("app", name)?;
        let fleet = self.fetch().await?;
        fleet.apps.get(name).cloned().ok_or_else(|| format!("no app {name}"))
    }

    pub(super) async fn env(&self, verb: EnvCommand) -> Result<ExitCode, String> {
        let (app, env, wait) = match verb {
            EnvCommand::List { app } => return self.env_list(&app).await,
            EnvCommand::Set { app, vars, wait } => {
                let spec = self.app(&app).await?;
                let mut env = spec.run.env.clone();
                for v in &vars {
                    let (k, v) = validate::env_assignment(v)?;
                    if spec.run.secrets.contains_key(&k) {
                        return Err(format!("{k} is a secret of {app}: `ctl secret unset {app} {k}` first"));
                    }
                    env.insert(k, v);
                }
                (spec, env, wait)
            }
            EnvCommand::Unset { app, names, wait } => {
                let spec = self.app(&app).await?;
                let mut env = spec.run.env.clone();
                for k in &names {
                    if env.remove(k).is_none() {
                        return Err(format!("{app} has no env variable {}", validate::quoted(k)));
                    }
                }
                (spec, env, wait)
            }
        };
        validate::env(&env)?;
        let req = redeploy(&app, RunPatch { env: Some(env), ..RunPatch::default() });
        self.command(CtlVerb::Deploy, req, None, wait.until()).await
    }

    async fn env_list(&self, app: &str) -> Result<ExitCode, String> {
        let spec = self.app(app).await?;
        if self.json {
            out!("{}", json!({ "app": spec.name, "env": spec.run.env, "secrets": spec.run.secrets }));
            return Ok(ExitCode::SUCCESS);
        }
        let mut rows: Vec<Vec<String>> =
            spec.run.env.iter().map(|(k, v)| vec![k.clone(), "env".into(), v.clone()]).collect();
        rows.extend(
            spec.run
                .secrets
                .iter()
                .map(|(k, r)| vec![k.clone(), "secret".into(), format!("v{} sha8 {}", r.version, r.sha8)]),
        );
        print_table(&["NAME", "KIND", "VALUE"], &rows);
        Ok(ExitCode::SUCCESS)
    }

    pub(super) async fn secret(&self, verb: SecretCommand) -> Result<ExitCode, String> {
        match verb {
            SecretCommand::Set { app, name, from, wait } => {
                validate::name("app", &app)?;
                validate::env_name("secret", &name)?;
                let Some(value) = read_value(&name, from.as_deref())? else {
                    eprintln!("cancelled: secret {name} of {app} left as it was");
                    return Ok(ExitCode::from(130));
                };
                validate::secret_value(&name, &value)?;
                let req = SecretSetRequest { app, name, value };
                self.command(CtlVerb::SecretSet, req, None, wait.until()).await
            }
            SecretCommand::Unset { app, name, wait } => {
                let spec = self.app(&app).await?;
                let mut secrets = spec.run.secrets.clone();
                if secrets.remove(&name).is_none() {
                    return Err(format!("{app} has no secret {}", validate::quoted(&name)));
                }
                let req = redeploy(&spec, RunPatch { secrets: Some(secrets), ..RunPatch::default() });
                self.command(CtlVerb::Deploy, req, None, wait.until()).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_are_checked_and_a_value_on_the_command_line_is_refused() {
        let vars = env_flags(&["A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(vars["B"], "x=y");
        assert!(env_flags(&["9A=1".into()]).unwrap_err().starts_with("--env: "));
        let err = read_value("K", Some("hunter2")).unwrap_err();
        assert!(err.contains("never taken from the command line") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_value_from_a_file_loses_one_trailing_newline() {
        let path = std::env::temp_dir().join(format!("qd-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n\n").unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(read_value("K", Some(&arg)).unwrap().as_deref(), Some("s3cret\n"));
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(read_value("K", Some(&arg)).unwrap().as_deref(), Some("s3cret"));
        std::fs::remove_file(&path).unwrap();
        assert!(read_value("K", Some("@/nonexistent/qd")).unwrap_err().contains("cannot read"));
    }
}
