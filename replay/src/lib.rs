//! # vextrus-replay
//!
//! Rebuilding read models from the log without downtime (design.md D6). This crate will own:
//!
//! - replay of one projection, for all tenants or one, with the same projection code as the live
//!   runner, from position 0 into shadow tables, catching up to the live watermark and swapping the
//!   shadow into place in one short transaction;
//! - progress (events done, events per second, ETA) and throttling so replay never starves live
//!   traffic;
//! - automatic rebuilds when a projection's version changes.
//!
//! Nothing is implemented here yet.
