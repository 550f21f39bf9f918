//! # vextrus
//!
//! The `vextrus` binary and the infrastructure it shares with the end-to-end tests:
//!
//! - [`postgres`]: a private PostgreSQL cluster from the installed server binaries, for users who
//!   have no server (design.md D10), for the test suite and for benchmarks;
//! - [`database`]: the embedded migrations and the connection pools, one per database role;
//! - [`server`]: the API and the projection runners in one process, as `vextrus serve` runs them;
//! - [`demo`]: the sample tenant of `vextrus serve --demo`;
//! - [`tenants`] and [`signing_keys`]: the platform operator's tenants and the keys that sign
//!   access tokens (`vextrus tenant`, `vextrus keys`);
//! - [`telemetry`]: OpenTelemetry traces over OTLP, when the standard variables ask for them;
//! - [`testkit`]: a fresh, migrated database per test on one cluster per test process.
//!
//! The subcommands themselves live in the binary (`src/main.rs`, `src/cli/`). The crates of the
//! workspace, inner to outer: `vextrus-domain` (rules) ← `vextrus-commands` (event store, log
//! reader) ← `vextrus-projections` ← `vextrus-replay` / `vextrus-api` ← this package.

pub mod analyst;
pub mod database;
pub mod demo;
pub mod postgres;
pub mod server;
pub mod signing_keys;
pub mod telemetry;
pub mod tenants;
pub mod testkit;
