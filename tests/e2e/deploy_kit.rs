//! The operators' kit in `deploy/`: the alert rules and the dashboard name only metrics a real
//! scrape has, the exposition and the rules pass `promtool` (Debian's `prometheus` package, which
//! `.ci/run` installs), and the systemd units run subcommands and set variables that exist.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use regex::Regex;
use vextrus::server::Fanout;

use crate::http::spawn_app_with;
use crate::kafka::broker;
use crate::metrics::{check_conventions, scrape_url};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The metric families an expression text names (`_bucket`, `_sum`, `_count` of a histogram
/// count as the histogram).
fn named_metrics(text: &str) -> BTreeSet<String> {
    let name = Regex::new(r"\b(?:vextrus|process)_[a-z_]+\b").unwrap();
    name.find_iter(text)
        .map(|found| {
            let found = found.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| found.strip_suffix(suffix))
                .unwrap_or(found)
                .to_owned()
        })
        .collect()
}

fn promtool() -> Option<Command> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!(
            "promtool is not installed (.ci/run installs Debian's prometheus package): its checks are skipped here"
        );
    }
    found.then(|| Command::new("promtool"))
}

#[tokio::test]
async fn the_alert_rules_and_dashboard_name_metrics_a_scrape_has_and_promtool_agrees() {
    let (_kafka, config) = broker();
    let app = spawn_app_with(|server| server.fanout = Fanout::Kafka(config.clone())).await;
    let admin = app.caller(&["admin"]);
    let hierarchy = admin.create_hierarchy("OPS").await;
    admin
        .tree_after(&hierarchy.org, hierarchy.position)
        .await
        .expect(200);

    let rules = read("deploy/prometheus/alerts.yml");
    let dashboard = read("deploy/grafana/vextrus.json");
    let dashboard_json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let expressions: String = dashboard_json["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned() + "\n")
        .collect();
    let wanted: BTreeSet<String> = named_metrics(&rules)
        .into_iter()
        .chain(named_metrics(&expressions))
        .collect();
    assert!(wanted.len() >= 20, "{wanted:?}");

    // librdkafka reports consumer lag every 5 s: scrape until every named metric is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (scrape, text) = loop {
        let (scrape, text) = scrape_url(&app.client, &app.url("/metrics")).await;
        let present: BTreeSet<String> = scrape
            .samples
            .iter()
            .map(|sample| sample.metric.clone())
            .collect();
        let missing: Vec<&String> = wanted.difference(&present).collect();
        if missing.is_empty() {
            break (scrape, text);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "named in deploy/ but not in a scrape: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    check_conventions(&scrape);

    if let Some(mut check_metrics) = promtool() {
        let mut child = check_metrics
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
        let output = Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(rules_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool check rules:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    app.shutdown().await;
}

#[test]
fn the_systemd_units_run_real_subcommands_with_documented_variables() {
    let readme = read("README.md");
    let documented: BTreeSet<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split('`').next())
        .collect();
    let variable = Regex::new(r"\b((?:VEXTRUS|DATABASE|KAFKA)_[A-Z_]+)=").unwrap();
    let subcommand = Regex::new(r"/usr/local/bin/vextrus (\w+)").unwrap();
    let mut units = 0;
    for file in [
        "vextrus-api.service",
        "vextrus-relay.service",
        "vextrus-project@.service",
        "vextrus.env.example",
    ] {
        let text = read(&format!("deploy/systemd/{file}"));
        for found in variable.captures_iter(&text) {
            let name = &found[1];
            let known = documented.contains(name)
                || name.starts_with("KAFKA_") && documented.contains("KAFKA_<KEY>");
            assert!(
                known,
                "{file}: {name} is not in the README's configuration table"
            );
        }
        for found in subcommand.captures_iter(&text) {
            assert!(
                ["serve", "relay", "project"].contains(&&found[1]),
                "{file}: vextrus {}",
                &found[1]
            );
            units += 1;
        }
    }
    assert_eq!(units, 3, "one ExecStart per unit");
}
