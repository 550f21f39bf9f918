//! # vextrus-api
//!
//! The HTTP face of Vextrus (design.md D7, D8, D9). This crate will own the axum router:
//!
//! - authentication (bearer JWT) and the tenant context taken from the verified token, with
//!   `X-Tenant-ID`, `X-Project-ID` and `X-Site-ID` validated against it;
//! - command endpoints that hand commands to the event store of `vextrus-commands`
//!   (`Idempotency-Key` becomes the command id, `If-Match` the expected version);
//! - query endpoints over the read models of `vextrus-projections`, with read-your-writes waits;
//! - the audit and operator endpoints, RFC 9457 problem+json errors, and the OpenAPI document.
//!
//! Nothing depends on this crate. Nothing is implemented here yet.
