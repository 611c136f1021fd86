//! `statuslab completions SHELL` and `statuslab man`: shell completions and manual pages,
//! generated from the same clap definition as `--help`, so they cannot drift from it.

use crate::{Cli, Failure};
use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;

pub(crate) const COMPLETIONS_HELP: &str = "\
Examples:
  statuslab completions bash > ~/.local/share/bash-completion/completions/statuslab
  statuslab completions zsh > ~/.zfunc/_statuslab     # with fpath+=~/.zfunc before compinit
  statuslab completions fish > ~/.config/fish/completions/statuslab.fish
  statuslab completions powershell >> $PROFILE";

pub(crate) const MAN_HELP: &str = "\
Examples:
  statuslab man | man -l -                 # read it now
  statuslab man serve | man -l -           # one command's page, every flag
  statuslab man --dir ~/.local/share/man/man1     # every page: statuslab.1, statuslab-serve.1, ...";

/// Arguments of `statuslab completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `statuslab man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// One command's page (statuslab-COMMAND(1)) instead of statuslab(1).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write every page into DIR (statuslab.1, statuslab-serve.1, ...) instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub(crate) fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "statuslab", &mut script);
    out.write_all(&script)
        .context("writing the completion script")?;
    Ok(())
}

/// The command the pages describe: built (so each subcommand knows its full name) and without
/// the `help` subcommand, which has no page of its own.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

pub(crate) fn man(args: &ManArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let cmd = command();
    if let Some(dir) = &args.dir {
        let mut pages = vec![cmd.clone()];
        pages.extend(cmd.get_subcommands().cloned());
        for page in pages {
            let name = clap_mangen::Man::new(page.clone()).get_filename();
            let path = dir.join(&name);
            std::fs::write(&path, render(page)?)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(out, "{}", path.display()).context("writing the list of pages")?;
        }
        return Ok(());
    }
    let page = match &args.command {
        None => cmd,
        Some(name) => cmd.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
            Failure::Usage(format!(
                "{name:?} is not a statuslab command: expected {}",
                names.join(", ")
            ))
        })?,
    };
    out.write_all(&render(page)?)
        .context("writing the manual page")?;
    Ok(())
}

/// One page as roff.
fn render(page: clap::Command) -> Result<Vec<u8>, Failure> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .context("rendering the manual page")?;
    // The help texts carry a reset sequence that keeps `{n}` from being read as a line break
    // (see serve_cmd::after_help); a page has no use for it.
    let text = String::from_utf8_lossy(&roff).replace("\x1b[0m", "");
    Ok(text.into_bytes())
}
