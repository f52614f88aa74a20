//! contrib/: the Grafana dashboard and the Prometheus rules use only metric
//! names the daemon exports (a rename in the code breaks this test, not the
//! operator's dashboard). promtool's own checks run in CI (lab/ci-extras.sh).

use std::collections::BTreeSet;

const DASHBOARD: &str = include_str!("../contrib/grafana/dagw.json");
const RULES: &str = include_str!("../contrib/prometheus/dagw.rules.yml");
const RULE_TESTS: &str = include_str!("../contrib/prometheus/dagw.rules.test.yml");
/// Where the exposition's sample names are written.
const EXPORTERS: [&str; 2] = [
    include_str!("../src/daemon/northbound.rs"),
    include_str!("../src/telemetry/metrics.rs"),
];

/// Every `dagw_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("dagw_") {
        let start = i + at;
        let boundary =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

fn exported(name: &str) -> bool {
    let quoted = format!("\"{name}\"");
    EXPORTERS.iter().any(|src| src.contains(&quoted))
}

#[test]
fn dashboard_and_rules_use_exported_metric_names_only() {
    let mut used = metric_names(DASHBOARD);
    used.extend(metric_names(RULES));
    used.extend(metric_names(RULE_TESTS));
    assert!(used.len() >= 15, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !exported(n)).collect();
    assert!(
        missing.is_empty(),
        "not exported by the daemon: {missing:?}"
    );
}

#[test]
fn dashboard_is_grafana_json_with_a_datasource_variable() {
    let v: serde_json::Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
    assert_eq!(v["uid"], "dagw");
    let vars = v["templating"]["list"].as_array().expect("templating");
    assert!(vars.iter().any(|x| x["type"] == "datasource"));
    let panels = v["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Gateway state",
        "Hold remaining",
        "Drift corrections",
        "Neighbours: local vs peer",
        "Peer heartbeat",
        "Heartbeat RTT",
        "Heartbeats dropped by reason",
        "ARP/ND sync progress",
    ] {
        assert!(titles.contains(&want), "{want} not in {titles:?}");
    }
}

#[test]
fn every_alert_has_a_promtool_test() {
    let alerts: Vec<&str> = RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 6, "{alerts:?}");
    for a in alerts {
        assert!(
            RULE_TESTS.contains(&format!("alertname: {a}")),
            "{a} has no test in dagw.rules.test.yml"
        );
    }
}
