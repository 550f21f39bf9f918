//! `vextrus replay` and `vextrus projections status`: the operator's view of the read models
//! (design.md D6).

use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use vextrus::database;
use vextrus_commands::{DbRole, LogReader};
use vextrus_domain::TenantId;
use vextrus_projections::Projection;
use vextrus_projections::registry::{self, Visit};
use vextrus_replay::{Outcome, Phase, Progress, Replay, ReplayError, ReplayOptions, Summary};

use super::DatabaseArgs;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The projection to rebuild, e.g. `organization_hierarchy`.
    projection: String,

    /// Rebuild only this tenant's rows; other tenants' rows are not touched.
    #[arg(long)]
    tenant: Option<uuid::Uuid>,

    /// Build the new read model and report how it differs from the live one; swap nothing.
    #[arg(long)]
    dry_run: bool,

    /// At most this many events per second, to leave room for live traffic.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_rate: Option<u32>,

    /// Events per page read from the log and per save.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    page_size: u32,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Every projection: version, position, lag behind the log, state, latest replay.
    Status {
        /// Print JSON (the same document as `GET /v1/ops/projections`).
        #[arg(long)]
        json: bool,
    },
}

/// The database as its owner (a replay creates and swaps tables): its options and the owner's
/// pool.
async fn open(
    database: &DatabaseArgs,
) -> anyhow::Result<(
    PgConnectOptions,
    PgPool,
    Option<vextrus::postgres::PrivatePostgres>,
)> {
    let (options, cluster) = database.open_for_operator().await?;
    let owner = PgPool::connect_with(options.clone()).await?;
    Ok((options, owner, cluster))
}

impl ReplayArgs {
    pub async fn run(&self, database: &DatabaseArgs) -> anyhow::Result<()> {
        // Refused before anything starts.
        let name = registry::known(&self.projection)?;
        let (database_options, owner, cluster) = open(database).await?;
        let log_pool = database::log_reader_pool(&database_options, 2).await?;
        let options = ReplayOptions {
            tenant: self.tenant.map(TenantId::from_uuid),
            dry_run: self.dry_run,
            max_rate: self.max_rate,
            page_size: self.page_size,
            ..ReplayOptions::default()
        };
        let display = Arc::new(ProgressDisplay::new());
        let replay = registry::named(
            name,
            &mut StartReplay {
                owner: owner.clone(),
                reader: LogReader::new(log_pool),
                options,
                display: display.clone(),
            },
        )?;
        let result = tokio::select! {
            result = replay => Some(result),
            () = super::serve::shutdown_signal() => None,
        };
        display.finish();
        owner.close().await;
        super::stop(cluster).await;
        match result {
            None => bail!(
                "interrupted: the live read model is untouched; run the command again to start over"
            ),
            Some(Err(ReplayError::AlreadyRunning(name))) => {
                bail!(
                    "another replay of {name} is running; wait for it to finish (see `vextrus projections status`)"
                )
            }
            Some(Err(error)) => {
                Err(error).context("replay failed; the live read model is untouched")
            }
            Some(Ok(summary)) => {
                print_summary(name, &summary);
                Ok(())
            }
        }
    }
}

/// The replay of the projection visited, ready to run.
struct StartReplay {
    owner: PgPool,
    reader: LogReader,
    options: ReplayOptions,
    display: Arc<ProgressDisplay>,
}

impl Visit for StartReplay {
    type Output = Pin<Box<dyn Future<Output = Result<Summary, ReplayError>> + Send>>;

    fn visit<P: Projection + Clone>(&mut self, projection: P) -> Self::Output {
        let replay = Replay::new(
            projection,
            self.owner.clone(),
            self.reader.clone(),
            self.options.clone(),
        );
        let display = self.display.clone();
        Box::pin(async move { replay.run(|progress| display.update(progress)).await })
    }
}

fn print_summary(projection: &str, summary: &Summary) {
    println!(
        "{projection}: replayed {} events in {:.1} s ({:.0} events/s), {} rows written",
        summary.events,
        summary.elapsed.as_secs_f64(),
        summary.events_per_second(),
        summary.rows_written
    );
    match &summary.outcome {
        Outcome::Swapped { position } => println!(
            "swapped in: the live read model is the rebuilt one, at log position {}",
            position.global_position
        ),
        Outcome::DryRun { differences } => {
            println!("dry run, nothing swapped. The rebuilt tables differ from the live ones by:");
            println!(
                "{:<24} {:>10} {:>10} {:>10}",
                "table", "added", "removed", "changed"
            );
            for diff in differences {
                println!(
                    "{:<24} {:>10} {:>10} {:>10}",
                    diff.table, diff.added, diff.removed, diff.changed
                );
            }
        }
    }
}

/// A progress bar on a terminal; a log line every few seconds otherwise.
pub(super) struct ProgressDisplay {
    bar: Option<ProgressBar>,
    last_line: std::sync::Mutex<Instant>,
}

const LINE_INTERVAL: Duration = Duration::from_secs(2);

impl ProgressDisplay {
    pub(super) fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:10} [{bar:40}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    pub(super) fn update(&self, progress: &Progress) {
        let phase = progress.phase.as_str();
        if let Some(bar) = &self.bar {
            bar.set_length(progress.events_total);
            bar.set_position(progress.events_done);
            bar.set_message(phase);
            return;
        }
        let mut last = self
            .last_line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() < LINE_INTERVAL && progress.phase == Phase::Building {
            return;
        }
        *last = Instant::now();
        let rate = progress.events_done as f64 / progress.elapsed.as_secs_f64().max(1e-3);
        let remaining = progress.events_total.saturating_sub(progress.events_done) as f64;
        eprintln!(
            "replay: {phase} {}/{} events ({rate:.0} events/s, ETA {:.0} s), {} rows written",
            progress.events_done,
            progress.events_total,
            remaining / rate.max(1.0),
            progress.rows_written
        );
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl ProjectionsCommand {
    pub async fn run(&self, database: &DatabaseArgs) -> anyhow::Result<()> {
        let Self::Status { json } = self;
        let (options, owner, cluster) = open(database).await?;
        let projector = database::role_pool(&options, DbRole::Projector, 4).await?;
        let reports = vextrus_replay::projection_reports(&projector).await;
        owner.close().await;
        projector.close().await;
        super::stop(cluster).await;
        let reports = reports?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
            return Ok(());
        }
        println!(
            "{:<24} {:>8} {:>6} {:>10} {:>10} {:>9}  state",
            "projection", "version", "fed by", "position", "lag", "lag (s)"
        );
        for report in &reports {
            let version = match report.built_version {
                Some(built) if built != report.version => format!("{built}→{}", report.version),
                _ => report.version.to_string(),
            };
            println!(
                "{:<24} {:>8} {:>6} {:>10} {:>10} {:>9.1}  {}{}",
                report.name,
                version,
                report.fed_by,
                report.position,
                report.lag_events,
                report.lag_seconds,
                report.state,
                report
                    .detail
                    .as_deref()
                    .map(|detail| format!(" ({detail})"))
                    .unwrap_or_default()
            );
            if let Some(replay) = &report.last_replay {
                println!(
                    "{:<24} last replay {} {}: {}/{} events, {} rows{}",
                    "",
                    replay.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    replay.state,
                    replay.events_done,
                    replay.events_total,
                    replay.rows_written,
                    replay
                        .detail
                        .as_deref()
                        .map(|detail| format!(" — {detail}"))
                        .unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}
