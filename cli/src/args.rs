//! The command line, as clap reads it.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rollgate",
    version,
    about = "Operate rollgate: status, history, rollback, freeze, rollouts, redrive, reports"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// What every command takes. Region, credentials and endpoint come from the AWS CLI's
/// own settings (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`...).
#[derive(Debug, Args)]
pub struct Global {
    /// The rollgate stack: its table and functions are named after it.
    #[arg(
        long,
        global = true,
        env = "ROLLGATE_STACK",
        default_value = "rollgate"
    )]
    pub stack: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Aliases, versions, weights, the latest release and the last decisions.
    Status(StatusArgs),
    /// Everything the ledger holds about a function, newest first.
    History(HistoryArgs),
    /// Roll back now, through alarm-rollback (same claims, allow-list, announcement).
    Rollback(ManualArgs),
    /// Hold automatic rollbacks for a while (alarms are still decided and announced).
    Freeze(FreezeArgs),
    /// Lift a freeze before its time.
    Unfreeze(ManualArgs),
    /// Drive a rollgate rollout.
    Rollout(RolloutArgs),
    /// Move dead letters back, running continuations until done.
    Redrive(RedriveArgs),
    /// Delivery metrics; with a deployment id, that deployment's report page.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A function (every function the ledger knows when left out).
    pub function: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// FUNCTION or FUNCTION:ALIAS.
    pub function: String,
    /// Rows to show at most.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ManualArgs {
    /// FUNCTION (every alias rollgate recorded) or FUNCTION:ALIAS.
    pub target: String,
    /// Why: announced and kept in the ledger.
    #[arg(long)]
    pub reason: String,
    /// Who asks (default: $ROLLGATE_REQUESTER, else $USER@host).
    #[arg(long)]
    pub requester: Option<String>,
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub manual: ManualArgs,
    /// How long: 90m, 2h, 1d (at most 7d).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// start, pause, resume, promote, abort or status.
    #[arg(value_parser = ["start", "pause", "resume", "promote", "abort", "status"])]
    pub action: String,
    /// FUNCTION (alias `live`) or FUNCTION:ALIAS.
    pub target: String,
    /// The version to roll out (start).
    #[arg(long)]
    pub version: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub requester: Option<String>,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The DLQ: URL, ARN or name; or s3://bucket/prefix of Lambda failure records.
    pub source: String,
    /// Where to: a queue, lambda:NAME[:QUALIFIER], sns, target, events (default: the
    /// queue whose RedrivePolicy names the DLQ).
    #[arg(long = "to")]
    pub destination: Option<String>,
    /// Messages per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many.
    #[arg(long = "max")]
    pub max_messages: Option<u64>,
    /// Only messages with this string attribute: NAME=VALUE (repeatable).
    #[arg(long = "filter", value_name = "NAME=VALUE")]
    pub filters: Vec<String>,
    /// Count and sample, move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the originals (replay into the destination).
    #[arg(long)]
    pub copy: bool,
    /// Stop each run after this many seconds (the function's deadline otherwise).
    #[arg(long)]
    pub max_run_seconds: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A deployment id (CodeDeploy's, a rollout's, an alias call's): its report page.
    pub deployment: Option<String>,
    /// Write the deployment's page to this file (one self-contained HTML file).
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// Delivery metrics of one function only; with a deployment, look for it in this
    /// function's aliases only (faster on a large ledger).
    #[arg(long)]
    pub function: Option<String>,
    /// The window of the delivery metrics, in days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
}
