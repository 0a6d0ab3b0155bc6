//! Every expected figure below is worked out by hand in the comment beside it.

use super::*;
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn release(function: &str, at_ms: i64, outcome: Outcome) -> Release {
    Release {
        function: function.to_owned(),
        alias: "live".to_owned(),
        deployment_id: format!("d-{function}{at_ms}"),
        at_ms,
        outcome,
        restore: None,
    }
}

fn restored(mut r: Release, alarm_ms: i64, restored_ms: i64) -> Release {
    r.restore = Some(Restore {
        alarm_ms,
        restored_ms,
    });
    r
}

fn days(n: i64) -> Window {
    Window::new(0, n * DAY_MS).unwrap()
}

/// orders: succeeded on day 1, rolled back on day 2 (alarm to restore 5 min), stopped on
/// day 3 (2 h), one still in progress on day 9; payments: failed on day 4, succeeded on
/// day 5. Window: 10 days.
fn two_functions() -> Summary {
    let releases = vec![
        release("orders", DAY_MS, Outcome::Succeeded),
        restored(
            release("orders", 2 * DAY_MS, Outcome::RolledBack),
            2 * DAY_MS + HOUR,
            2 * DAY_MS + HOUR + 5 * MIN,
        ),
        restored(
            release("orders", 3 * DAY_MS, Outcome::Stopped),
            3 * DAY_MS + 10 * MIN,
            3 * DAY_MS + 10 * MIN + 2 * HOUR,
        ),
        release("orders", 9 * DAY_MS, Outcome::InProgress),
        release("payments", 4 * DAY_MS, Outcome::Failed),
        release("payments", 5 * DAY_MS, Outcome::Succeeded),
    ];
    summarize(&releases, days(10))
}

#[test]
fn a_window_is_never_empty() {
    assert_eq!(
        Window::new(5, 5),
        Err(DoraError::EmptyWindow {
            start_ms: 5,
            end_ms: 5
        })
    );
    assert!(Window::new(5, 4).is_err());
    assert!(Window::trailing_days(10 * DAY_MS, 0).is_err());
    let w = Window::trailing_days(10 * DAY_MS, 7).unwrap();
    assert_eq!(
        (w.start_ms(), w.end_ms(), w.days()),
        (3 * DAY_MS, 10 * DAY_MS, 7.0)
    );
}

#[test]
fn an_empty_window_has_a_frequency_of_zero_and_no_other_figure() {
    let s = summarize(&[], days(30));
    assert!(s.functions.is_empty());
    assert_eq!(s.outside_window, 0);
    let a = &s.account;
    assert_eq!(a.counts, Counts::default());
    assert_eq!(a.deployment_frequency.per_day, 0.0);
    assert_eq!(a.deployment_frequency.band, Band::Low);
    assert_eq!(
        (a.change_failure_rate.percent, a.change_failure_rate.band),
        (None, None)
    );
    assert_eq!(a.rollback_rate.percent, None);
    assert_eq!(a.time_to_restore, TimeToRestore::default());
    // The account's document only: the undefined figures are left out, not sent as 0.
    let docs = emf(&s);
    assert_eq!(docs.len(), 1);
    let doc = docs[0].to_json(0);
    assert_eq!(
        metric_names(&doc),
        ["Releases", "DeploymentFrequency", "RestoreSamples"]
    );
    assert_eq!(doc["Releases"], 0.0);
}

#[test]
fn one_release() {
    // 1 succeeded release in 1 day: 1.0 a day, which is "once per day": high, not elite.
    let s = summarize(&[release("orders", 0, Outcome::Succeeded)], days(1));
    assert_eq!(s.functions.len(), 1);
    let f = &s.functions[0].figures;
    assert_eq!(f.deployment_frequency.per_day, 1.0);
    assert_eq!(f.deployment_frequency.band, Band::High);
    // 0 failures of 1 finished release: 0 %, elite; no rollback; nothing restored.
    assert_eq!(f.change_failure_rate.percent, Some(0.0));
    assert_eq!(f.change_failure_rate.band, Some(Band::Elite));
    assert_eq!((f.rollback_rate.count, f.rollback_rate.of), (0, 1));
    assert_eq!(f.rollback_rate.band, None);
    assert_eq!(f.time_to_restore.samples, 0);
    assert_eq!(s.account, *f);
}

#[test]
fn figures_per_function_and_for_the_account() {
    let s = two_functions();
    let names: Vec<&str> = s.functions.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(names, ["orders", "payments"]);

    // Account: 6 releases, 1 in progress, so 5 finished; failures: rolled back + stopped +
    // failed = 3 -> 60 %, low; rollgate undid 2 of 5 -> 40 %; 6 in 10 days = 0.6 a day, high
    // (at least once a week); restores 5 min and 2 h: median rank ceil(0.5 * 2) = 1 -> 5 min
    // (elite), p90 rank ceil(0.9 * 2) = 2 -> 2 h.
    let a = &s.account;
    assert_eq!(
        a.counts,
        Counts {
            releases: 6,
            in_progress: 1,
            succeeded: 2,
            failed: 1,
            stopped: 1,
            rolled_back: 1
        }
    );
    assert_eq!(a.deployment_frequency.per_day, 0.6);
    assert_eq!(a.deployment_frequency.band, Band::High);
    assert_eq!(
        (a.change_failure_rate.count, a.change_failure_rate.of),
        (3, 5)
    );
    assert_eq!(a.change_failure_rate.percent, Some(60.0));
    assert_eq!(a.change_failure_rate.band, Some(Band::Low));
    assert_eq!((a.rollback_rate.count, a.rollback_rate.of), (2, 5));
    assert_eq!(a.rollback_rate.percent, Some(40.0));
    let ttr = a.time_to_restore;
    assert_eq!((ttr.samples, ttr.discarded), (2, 0));
    assert_eq!((ttr.median_ms, ttr.p90_ms), (Some(5 * MIN), Some(2 * HOUR)));
    assert_eq!(ttr.band, Some(Band::Elite));

    // orders: 4 releases, 3 finished, 2 failures -> 66.67 %; 2 undone of 3; 0.4 a day.
    let o = &s.functions[0].figures;
    assert_eq!(o.counts.releases, 4);
    assert_eq!(
        (o.change_failure_rate.count, o.change_failure_rate.of),
        (2, 3)
    );
    assert!((o.change_failure_rate.percent.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    assert_eq!((o.rollback_rate.count, o.rollback_rate.of), (2, 3));
    assert_eq!(o.deployment_frequency.per_day, 0.4);
    assert_eq!(o.time_to_restore, a.time_to_restore);

    // payments: 2 finished, 1 failed -> 50 %; none undone by rollgate -> 0 %; 0.2 a day is
    // still at least once a week (1/7 = 0.143): high; nothing restored.
    let p = &s.functions[1].figures;
    assert_eq!(p.change_failure_rate.percent, Some(50.0));
    assert_eq!(p.rollback_rate.percent, Some(0.0));
    assert_eq!(p.deployment_frequency.per_day, 0.2);
    assert_eq!(p.deployment_frequency.band, Band::High);
    assert_eq!(p.time_to_restore.median_ms, None);
    assert_eq!(p.time_to_restore.band, None);
}

#[test]
fn releases_outside_the_window_are_left_out_and_counted() {
    // [1 day, 2 days): the start is in, the end is out.
    let w = Window::new(DAY_MS, 2 * DAY_MS).unwrap();
    let releases = [
        release("orders", DAY_MS - 1, Outcome::Failed),
        release("orders", DAY_MS, Outcome::Succeeded),
        release("orders", 2 * DAY_MS - 1, Outcome::Succeeded),
        release("orders", 2 * DAY_MS, Outcome::RolledBack),
        release("payments", 5 * DAY_MS, Outcome::Failed),
    ];
    let s = summarize(&releases, w);
    assert_eq!(s.outside_window, 3);
    assert_eq!(s.account.counts.releases, 2);
    // Both inside succeeded: the failure and the rollback outside change nothing.
    assert_eq!(s.account.change_failure_rate.percent, Some(0.0));
    assert_eq!(s.account.rollback_rate.percent, Some(0.0));
    // payments released only outside: not listed at all.
    assert_eq!(s.functions.len(), 1);
}

#[test]
fn ties_count_every_release_and_every_sample() {
    // Two releases in the same millisecond are two releases.
    let same = [
        release("orders", 10, Outcome::Succeeded),
        release("orders", 10, Outcome::RolledBack),
    ];
    let s = summarize(&same, days(1));
    assert_eq!(s.account.counts.releases, 2);
    assert_eq!(s.account.change_failure_rate.percent, Some(50.0));
    // Equal durations: every percentile is that duration.
    let restores = [Restore {
        alarm_ms: 0,
        restored_ms: MIN,
    }; 3];
    let t = TimeToRestore::of(&restores);
    assert_eq!(
        (t.samples, t.median_ms, t.p90_ms),
        (3, Some(MIN), Some(MIN))
    );
    // Nearest rank on 1, 2, 3, 4: median rank 2 -> 2, p90 rank ceil(3.6) = 4 -> 4.
    assert_eq!(nearest_rank(&[1, 2, 3, 4], 50.0), Some(2));
    assert_eq!(nearest_rank(&[1, 2, 3, 4], 90.0), Some(4));
    assert_eq!(nearest_rank(&[7], 90.0), Some(7));
    assert_eq!(nearest_rank(&[], 50.0), None);
}

#[test]
fn bands_at_their_boundaries() {
    use Band::*;
    let freq = [
        (1.01, Elite),
        (1.0, High),
        (1.0 / 7.0, High),
        (0.14, Medium),
        (1.0 / 30.0, Medium),
        (0.033, Low),
        (0.0, Low),
    ];
    for (per_day, band) in freq {
        assert_eq!(Band::of_frequency(per_day), band, "{per_day} a day");
    }
    let cfr = [
        (0.0, Elite),
        (5.0, Elite),
        (5.01, High),
        (10.0, High),
        (15.0, Medium),
        (15.1, Low),
        (64.0, Low),
    ];
    for (percent, band) in cfr {
        assert_eq!(Band::of_change_failure_rate(percent), band, "{percent} %");
    }
    let ttr = [
        (HOUR - 1, Elite),
        (HOUR, High),
        (DAY_MS - 1, High),
        (DAY_MS, Medium),
        (7 * DAY_MS - 1, Medium),
        (7 * DAY_MS, Low),
    ];
    for (ms, band) in ttr {
        assert_eq!(Band::of_time_to_restore(ms), band, "{ms} ms");
    }
}

/// One value from inside each range of the 2023 report's table (see the module docs) lands
/// in that row's band; the frequency range the medium and low rows share reads as medium,
/// and a recovery between one week and one month (no 2023 row) as low.
#[test]
fn the_2023_table_rows_read_as_their_bands() {
    use Band::*;
    // Elite: on demand; high: between once per day and once per week; medium and low:
    // between once per week and once per month.
    assert_eq!(Band::of_frequency(4.0), Elite);
    assert_eq!(Band::of_frequency(1.0 / 3.0), High);
    assert_eq!(Band::of_frequency(1.0 / 14.0), Medium);
    // Each row's change failure rate.
    for (percent, band) in [(5.0, Elite), (10.0, High), (15.0, Medium), (64.0, Low)] {
        assert_eq!(Band::of_change_failure_rate(percent), band, "{percent} %");
    }
    // Less than one hour; less than one day; between one day and one week; between one
    // month and six months; and the gap between one week and one month.
    for (ms, band) in [
        (20 * MIN, Elite),
        (6 * HOUR, High),
        (3 * DAY_MS, Medium),
        (90 * DAY_MS, Low),
        (14 * DAY_MS, Low),
    ] {
        assert_eq!(Band::of_time_to_restore(ms), band, "{ms} ms");
    }
}

#[test]
fn a_restore_before_its_alarm_is_discarded_and_said_so() {
    let r = restored(release("orders", 0, Outcome::RolledBack), 10, 5);
    let s = summarize(&[r], days(1));
    let t = s.account.time_to_restore;
    assert_eq!((t.samples, t.discarded, t.median_ms), (0, 1, None));
    let lines = s.account.explain();
    assert_eq!(
        lines[3],
        "time to restore: none (no restore; 1 discarded: restored before the alarm)"
    );
    // Still a change failure and a rollback.
    assert_eq!(s.account.rollback_rate.percent, Some(100.0));
}

fn metric_names(doc: &Value) -> Vec<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn one_emf_document_per_function_and_one_for_the_account() {
    let docs: Vec<Value> = emf(&two_functions()).iter().map(|d| d.to_json(7)).collect();
    assert_eq!(docs.len(), 3);
    let all = [
        "Releases",
        "DeploymentFrequency",
        "ChangeFailureRate",
        "RollbackRate",
        "TimeToRestoreP50",
        "TimeToRestoreP90",
        "RestoreSamples",
    ];
    let (orders, payments, account) = (&docs[0], &docs[1], &docs[2]);
    assert_eq!(metric_names(orders), all);
    assert_eq!(metric_names(account), all);
    let cw = &orders["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(cw["Namespace"], "Rollgate");
    assert_eq!(cw["Dimensions"], json!([["Function"]]));
    assert_eq!(orders["Function"], "orders");
    assert_eq!(orders["TimeToRestoreP50"], json!((5 * MIN) as f64));
    assert_eq!(orders["RollbackRate"], json!(200.0 / 3.0));
    assert_eq!(orders["ChangeFailures"], 2);
    assert_eq!(orders["FinishedReleases"], 3);
    // payments restored nothing: no time to restore, 0 samples.
    assert_eq!(
        metric_names(payments),
        [
            "Releases",
            "DeploymentFrequency",
            "ChangeFailureRate",
            "RollbackRate",
            "RestoreSamples"
        ]
    );
    assert_eq!(payments["RestoreSamples"], 0.0);
    // The account's document has no dimension at all (an empty dimension set).
    assert_eq!(
        account["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]])
    );
    assert!(account.get("Function").is_none());
    assert_eq!(account["Releases"], 6.0);
    assert_eq!(account["ChangeFailureRate"], 60.0);
    assert_eq!(account["ChangeFailureRateBand"], "low");
    assert_eq!(account["WindowEndMs"], 10 * DAY_MS);
    let units: Vec<&str> = account["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        units,
        [
            "Count",
            "None",
            "Percent",
            "Percent",
            "Milliseconds",
            "Milliseconds",
            "Count"
        ]
    );
}

#[test]
fn each_figure_explains_itself_with_its_counts() {
    let s = two_functions();
    assert_eq!(
        s.functions[0].figures.explain(),
        [
            "deployment frequency: 0.40 a day (4 releases in 10.0 days; high)",
            "change failure rate: 66.7% (2 of 3 finished releases failed, were stopped or rolled back; low)",
            "rollback rate: 66.7% (2 of 3 finished releases were rolled back or stopped by rollgate)",
            "time to restore: median 5m00s, p90 2h00m (2 restores; elite)",
        ]
    );
    let empty = summarize(&[], days(7));
    assert_eq!(
        empty.account.explain()[1],
        "change failure rate: none (no finished release)"
    );
}

#[test]
fn durations_read_as_people_read_them() {
    let cases = [
        (850, "850ms"),
        (12_500, "12.5s"),
        (4 * MIN + 5_000, "4m05s"),
        (2 * HOUR + 10 * MIN, "2h10m"),
        (3 * DAY_MS + 4 * HOUR, "3d04h"),
    ];
    for (ms, text) in cases {
        assert_eq!(human_ms(ms), text);
    }
}

#[test]
fn a_summary_round_trips_as_json() {
    let s = two_functions();
    let value = serde_json::to_value(&s).unwrap();
    assert_eq!(value["account"]["change_failure_rate"]["band"], "low");
    assert_eq!(value["functions"][0]["function"], "orders");
    let back: Summary = serde_json::from_value(value).unwrap();
    assert_eq!(back, s);
}

#[test]
fn the_functions_scope_leaves_the_account_out() {
    let s = two_functions();
    let functions: Vec<Value> = documents(&s, Scope::Functions)
        .iter()
        .map(|d| d.to_json(0))
        .collect();
    let names: Vec<&str> = functions
        .iter()
        .map(|d| d["Function"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "payments"]);
    let all = documents(&s, Scope::Account);
    assert_eq!(all.len(), 3);
    assert!(all[2].to_json(0).get("Function").is_none());
    // One function's releases alone: its document and nothing else.
    let one = summarize(&[release("orders", 0, Outcome::Succeeded)], days(1));
    assert_eq!(documents(&one, Scope::Functions).len(), 1);
}
