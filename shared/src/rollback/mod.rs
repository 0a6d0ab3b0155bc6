//! Alarm rollback: undo a bad release when an alarm that guards its function fires,
//! during the CodeDeploy deployment (stop it, CodeDeploy rolls back) or within a bake
//! window after it succeeded (point the alias back at the previous version).
//!
//! Pure parts: [`event`] (the three alarm envelopes and CodeDeploy events),
//! [`targets`] (alarm → guarded functions), [`ledger`] (what is stored, and its keys),
//! [`decide`] (the decision table), [`manual`] (an operator's rollback, freeze, unfreeze). [`ports`] are the AWS seams (in-memory `fakes` for tests, with the `fakes` feature);
//! [`run`] wires them.

pub mod cloudtrail;
pub mod decide;
pub mod delivery;
pub mod event;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ledger;
pub mod manual;
pub mod ports;
pub mod run;
pub mod targets;

#[cfg(test)]
mod orchestration_tests;

pub use run::COMPONENT;
