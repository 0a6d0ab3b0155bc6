//! `rollgate`: the operators' command. It reads the ledger, asks rollgate's functions to
//! act (so that every action goes through their claims, allow-lists and announcements)
//! and prints tables, or JSON with `--json`. Exit codes: see [`error::CliError::code`].

mod args;
mod context;
mod error;
mod history;
mod manual;
mod out;
mod redrive;
mod report;
mod rollout;
mod status;
mod view;

use args::{Cli, Command};
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let ctx = context::Context::load(&cli.global).await;
    let result = match &cli.command {
        Command::Status(a) => status::run(&ctx, a).await,
        Command::History(a) => history::run(&ctx, a).await,
        Command::Rollback(a) => manual::rollback(&ctx, a).await,
        Command::Freeze(a) => manual::freeze(&ctx, a).await,
        Command::Unfreeze(a) => manual::unfreeze(&ctx, a).await,
        Command::Rollout(a) => rollout::run(&ctx, a).await,
        Command::Redrive(a) => redrive::run(&ctx, a).await,
        Command::Report(a) => report::run(&ctx, a).await,
    };
    if let Err(e) = result {
        eprintln!("rollgate: {e}");
        if let Some(hint) = e.hint(&cli.global.stack) {
            eprintln!("rollgate: {hint}");
        }
        std::process::exit(e.code());
    }
}
