//! The `vextrus` binary. Thin on purpose: it parses the configuration, sets up logging (and, when
//! asked, trace export) and hands over to a subcommand in [`cli`]. Reusable machinery lives in the
//! library and the crates.

mod cli;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};
use vextrus::telemetry::Traces;

/// The spans exported as traces.
const TRACE_FILTER: &str = "info,sqlx=warn";

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match cli.log_format {
        // Colours only for a person at a terminal: a log file gets no escape sequences.
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        cli::LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let traces = match Traces::from_env() {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Traces keep every span at info and above whatever the log filter says (`VEXTRUS_LOG=warn`
    // quiets the logs, not the traces); the database driver's own spans stay out.
    let exported = traces.as_ref().map(|traces| {
        tracing_opentelemetry::layer()
            .with_tracer(traces.tracer())
            .with_filter(EnvFilter::new(TRACE_FILTER))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(exported)
        .init();
    let outcome = cli.run().await;
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
