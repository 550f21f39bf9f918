//! `GET /metrics`, read with a Prometheus text parser nobody here wrote (`prometheus-parse`), and
//! held to the naming conventions: base units, `_total` counters, bounded labels.

use std::collections::BTreeMap;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::http::*;

/// The API port's `/metrics`, parsed.
pub async fn scrape(app: &TestApp) -> Scrape {
    scrape_url(&app.client, &app.url("/metrics")).await.0
}

/// `/metrics` at `url`: parsed, and as text.
pub async fn scrape_url(client: &reqwest::Client, url: &str) -> (Scrape, String) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    (scrape, text)
}

/// The value of the sample `name` whose labels include `labels`.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .find(|sample| {
            labels
                .iter()
                .all(|(key, value)| sample.labels.get(key) == Some(*value))
        })
        .map(|sample| match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

fn is_uuid_like(text: &str) -> bool {
    text.split(['/', '-'])
        .any(|part| part.len() >= 8 && part.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Holds every sample of `scrape` to the conventions: a namespace, typed, `_total` counters only,
/// `_seconds` histograms, base units, a HELP line, no tenant label, route templates.
pub fn check_conventions(scrape: &Scrape) {
    let docs: BTreeMap<&str, &str> = scrape
        .docs
        .iter()
        .map(|(name, help)| (name.as_str(), help.as_str()))
        .collect();
    let names: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|sample| sample.metric.as_str())
        .collect();
    for sample in &scrape.samples {
        let Sample {
            metric,
            value,
            labels,
            ..
        } = sample;
        assert!(
            metric.starts_with("vextrus_") || metric.starts_with("process_"),
            "{metric} has no namespace"
        );
        // A histogram's `_sum` and `_count` lines come back untyped, under their own names.
        let family = match value {
            Value::Counter(_) => {
                assert!(metric.ends_with("_total"), "counter {metric}");
                metric.as_str()
            }
            Value::Histogram(_) => {
                assert!(metric.ends_with("_seconds"), "histogram {metric}");
                metric.as_str()
            }
            Value::Gauge(_) => {
                assert!(!metric.ends_with("_total"), "gauge {metric}");
                metric.as_str()
            }
            Value::Untyped(_) => metric
                .strip_suffix("_sum")
                .or_else(|| metric.strip_suffix("_count"))
                .filter(|family| names.contains(family))
                .unwrap_or_else(|| panic!("{metric} is untyped: every metric is typed")),
            Value::Summary(_) => panic!("{metric} is a summary: durations are histograms"),
        };
        assert!(
            !metric.contains("_ms") && !metric.contains("milli") && !metric.contains("_minutes"),
            "{metric} is in base units"
        );
        assert!(docs.contains_key(family), "{metric} has no HELP");
        assert!(
            labels.get("tenant_id").is_none(),
            "{metric} has a tenant label"
        );
        if let Some(route) = labels.get("route") {
            assert!(
                route == "unmatched"
                    || route.starts_with('/') && !is_uuid_like(route) && !route.contains('{'),
                "{metric}: route {route} is not a template"
            );
        }
    }
}

#[tokio::test]
async fn metrics_parse_follow_the_conventions_and_count_what_happened() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let tree = admin.create_hierarchy("MET").await;
    admin
        .get(&format!(
            "/v1/organizations/{}/tree?min_position={}",
            tree.org, tree.position
        ))
        .await
        .expect(200);
    admin
        .post("/v1/organizations", json!({"name": "", "code": "x"}))
        .await
        .expect(422);
    admin.get("/v1/nowhere").await.expect(404);

    let scrape = scrape(&app).await;
    check_conventions(&scrape);
    // What this test did is counted.
    let created = value(
        &scrape,
        "vextrus_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/v1/organizations"),
            ("status", "201"),
        ],
    );
    assert!(created >= Some(1.0), "{created:?}");
    let tree_reads = value(
        &scrape,
        "vextrus_http_requests_total",
        &[
            ("route", "/v1/organizations/:organization_id/tree"),
            ("status", "200"),
        ],
    );
    assert!(tree_reads >= Some(1.0), "{tree_reads:?}");
    assert!(
        value(
            &scrape,
            "vextrus_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= Some(1.0)
    );
    assert!(
        value(
            &scrape,
            "vextrus_http_request_duration_seconds",
            &[("route", "/v1/organizations")]
        ) >= Some(1.0)
    );
    for (command, outcome) in [
        ("create-organization", "accepted"),
        ("create-site", "accepted"),
    ] {
        let counted = value(
            &scrape,
            "vextrus_commands_total",
            &[
                ("aggregate", "organization"),
                ("command", command),
                ("outcome", outcome),
            ],
        );
        assert!(counted >= Some(1.0), "{command} {outcome}: {counted:?}");
    }
    assert!(
        value(
            &scrape,
            "vextrus_events_appended_total",
            &[("aggregate", "organization")]
        ) >= Some(4.0)
    );
    assert!(value(&scrape, "vextrus_log_head_position", &[]) >= Some(tree.position as f64));
    assert!(value(&scrape, "vextrus_log_watermark_age_seconds", &[]).is_some());
    for projection in ["organization_hierarchy", "general_ledger", "audit_activity"] {
        assert!(
            value(
                &scrape,
                "vextrus_projection_lag_events",
                &[("projection", projection)]
            )
            .is_some(),
            "{projection}"
        );
        assert_eq!(
            value(
                &scrape,
                "vextrus_projection_state",
                &[("projection", projection), ("state", "running")]
            ),
            Some(1.0),
            "{projection}"
        );
    }
    // The writer pool may have nothing open: appends go through the group-commit workers'
    // own connections, and the commands after a creation decide on kept state (no load).
    assert!(
        value(
            &scrape,
            "vextrus_db_pool_connections",
            &[("pool", "writer")]
        )
        .is_some()
    );
    // The projections read the log all the time, on the log reader's pool; their batches are
    // written on the projector's.
    assert!(
        value(
            &scrape,
            "vextrus_db_pool_connections",
            &[("pool", "log_reader")]
        ) >= Some(1.0)
    );
    assert!(
        value(
            &scrape,
            "vextrus_db_pool_connections",
            &[("pool", "projector")]
        )
        .is_some()
    );
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > Some(1_000_000.0));
    assert!(value(&scrape, "process_open_fds", &[]) > Some(3.0));
    assert!(value(&scrape, "process_cpu_seconds_total", &[]).is_some());
    app.shutdown().await;
}

/// `VEXTRUS_METRICS_LISTEN` moves `/metrics` off the API port onto a listener of its own.
#[tokio::test]
async fn metrics_listen_serves_metrics_apart_from_the_api() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let app = spawn_app_with(|config| config.metrics_listen = Some(address)).await;
    app.client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    let on_api_port = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api_port.status(), 404);
    let (scrape, _) = scrape_url(&app.client, &format!("http://{address}/metrics")).await;
    check_conventions(&scrape);
    assert!(value(&scrape, "vextrus_log_head_position", &[]).is_some());
    app.shutdown().await;
}

/// `vextrus relay` and `vextrus project` have no API: with `VEXTRUS_METRICS_LISTEN` they serve
/// `/metrics` themselves, with the fan-out's metrics in it.
#[tokio::test]
async fn relay_and_project_serve_metrics_when_asked() {
    let app = spawn_app_with(|config| config.fanout = vextrus::server::Fanout::Elsewhere).await;
    let (_kafka, config) = crate::kafka::broker();
    let mut children = Vec::new();
    let mut addresses = Vec::new();
    for command in ["relay", "project"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let child = crate::cli::vextrus(&std::env::temp_dir())
            .arg(command)
            .env("DATABASE_URL", &app.db.url)
            .env("KAFKA_BROKERS", &config.brokers)
            .env("KAFKA_TOPIC_PREFIX", &config.topic_prefix)
            .env("VEXTRUS_METRICS_LISTEN", address.to_string())
            .spawn()
            .unwrap();
        children.push(child);
        addresses.push((command, address));
    }
    let admin = app.caller(&["admin"]);
    admin.create_hierarchy("FAN").await;
    for (command, address) in addresses {
        let wanted = match command {
            "relay" => "vextrus_kafka_events_produced_total",
            _ => "vextrus_kafka_rebalances_total",
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = app
                .client
                .get(format!("http://{address}/metrics"))
                .send()
                .await;
            if let Ok(answer) = answer {
                let text = answer.text().await.unwrap();
                let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
                if scrape.samples.iter().any(|sample| sample.metric == wanted) {
                    check_conventions(&scrape);
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "vextrus {command}: no {wanted} on {address}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    app.shutdown().await;
}
