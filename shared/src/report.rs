//! Report exactly once, even when the process panics.
//!
//! A hook execution is "armed" in a [`ReportSlot`] before any work starts. Whoever takes
//! it out first — the normal path, or the panic hook installed by
//! [`install_panic_reporter`] — is the only one that reports. Release builds abort on
//! panic, so the panic hook reports `Failed` synchronously, on a thread of its own, before
//! the process ends: CodeDeploy never waits for its one-hour hook timeout.

use crate::decision::Verdict;
use crate::ports::Deployments;
use std::sync::Mutex;
use std::time::Duration;

/// The ids needed to report one hook execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookExecution {
    pub deployment_id: String,
    pub execution_id: String,
}

/// Holds the hook execution that has not been reported yet.
#[derive(Debug, Default)]
pub struct ReportSlot {
    pending: Mutex<Option<HookExecution>>,
}

impl ReportSlot {
    pub const fn new() -> Self {
        Self {
            pending: Mutex::new(None),
        }
    }

    pub fn arm(&self, execution: HookExecution) {
        *self.lock() = Some(execution);
    }

    /// Take the right to report. `None` means somebody already reported.
    pub fn claim(&self) -> Option<HookExecution> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HookExecution>> {
        // A panic while holding the lock must not stop the panic reporter.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Install a panic hook that reports `Failed` for the execution armed in `slot`, then
/// runs the previous hook (which prints the panic).
pub fn install_panic_reporter<D>(slot: &'static ReportSlot, deployments: D)
where
    D: Deployments + Clone + 'static,
{
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(exec) = slot.claim() {
            let deployments = deployments.clone();
            let message = info.to_string();
            let reported = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(5),
                        deployments.report_hook(
                            &exec.deployment_id,
                            &exec.execution_id,
                            Verdict::Failed,
                        ),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                })
            })
            .join()
            .ok()
            .flatten();
            eprintln!(
                "{}",
                serde_json::json!({
                    "level": "ERROR",
                    "message": "panic: reported Failed to CodeDeploy (fail closed)",
                    "panic": message,
                    "reported": reported.is_some(),
                })
            );
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_claim_reports() {
        let slot = ReportSlot::new();
        assert_eq!(slot.claim(), None);
        let exec = HookExecution {
            deployment_id: "d-1".into(),
            execution_id: "e-1".into(),
        };
        slot.arm(exec.clone());
        assert_eq!(slot.claim(), Some(exec));
        assert_eq!(slot.claim(), None);
    }
}
