//! End-to-end tests against a real PostgreSQL (a private cluster started by the first test; see
//! `vextrus::testkit`). One binary, so one cluster per test run; every test has its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analyst;
mod api_finance;
mod api_hierarchy;
mod api_input;
mod api_invoicing;
mod api_security;
mod audit;
mod cli;
mod crash;
mod deploy_kit;
mod http;
mod identity;
mod immutability;
mod kafka;
mod log_reader;
mod metrics;
mod openapi;
mod private_postgres;
mod projections;
mod read_models;
mod replay;
mod roles;
mod row_security;
mod store;
mod support;
mod tamper;
mod traces;
