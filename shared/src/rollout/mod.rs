//! Progressive rollouts run by rollgate: the alias moves through steps of any length
//! (5 % for an hour, 25 % for four, ...), the new version is judged against the old one
//! at the end of each hold, and the next step is an EventBridge Scheduler one-time
//! schedule, so nothing waits inside Lambda. Operators pause, resume, promote and abort
//! through the same invoke.
//!
//! Pure parts: [`request`] (what an invocation asks), [`decide`] (the state and its
//! transitions). [`judge`] reads the metrics through the post-traffic hook's statistics;
//! [`ports`] are the AWS seams; [`run`] and `apply` wire them.

pub mod apply;
pub mod decide;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod judge;
pub mod ports;
pub mod request;
pub mod run;
pub mod shift;

#[cfg(test)]
mod orchestration_tests;

pub use run::COMPONENT;
