//! DLQ redrive: move dead-lettered messages back without losing one.
//!
//! Pure parts: [`request`] (parsing, filter, allow-list), [`message`] (the copy sent,
//! deduplication ids, Lambda record unwrapping, FIFO send rounds), [`rate`] (AIMD).
//! [`peek`] shows a page of messages and hands them back at once; [`objects`] takes an S3
//! prefix of Lambda failure records as the source.
//! [`engine`] runs a redrive over the [`ports`]; the `dlq-redrive` function wires it.
//! The request and report formats are documented in `docs/redrive.md`.

pub mod engine;
#[cfg(test)]
mod engine_tests;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod message;
pub mod objects;
pub mod peek;
pub mod ports;
pub mod rate;
pub mod request;

pub use engine::{COMPONENT, Limits, Redrive, Report, Stopped, announce, handle_request};
pub use request::{AllowList, Request};
