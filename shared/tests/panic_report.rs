//! A panic in the middle of a gate still reports `Failed`, exactly once. This lives in
//! its own test binary because the panic hook is process-wide.

use rollgate::decision::Verdict;
use rollgate::fakes::FakeDeployments;
use rollgate::report::{HookExecution, ReportSlot, install_panic_reporter};

static SLOT: ReportSlot = ReportSlot::new();

#[test]
fn a_panic_reports_failed_once_and_only_for_an_armed_execution() {
    let deployments = FakeDeployments::default();
    install_panic_reporter(&SLOT, deployments.clone());

    // Nothing armed: a panic reports nothing.
    let _ = std::thread::spawn(|| panic!("before any hook execution")).join();
    assert!(deployments.reports().is_empty());

    SLOT.arm(HookExecution {
        deployment_id: "d-PANIC0001".into(),
        execution_id: "exec-9".into(),
    });
    let _ = std::thread::spawn(|| panic!("bug in the middle of a gate")).join();
    assert_eq!(
        deployments.reports(),
        vec![(
            "d-PANIC0001".to_owned(),
            "exec-9".to_owned(),
            Verdict::Failed
        )]
    );
    // The normal path finds nothing left to report.
    assert_eq!(SLOT.claim(), None);
    let _ = std::thread::spawn(|| panic!("a second panic")).join();
    assert_eq!(deployments.reports().len(), 1);
}
