//! `/openapi.json` is the contract client generators and fuzzers start from: it must be a valid
//! OpenAPI 3.1 document whose every reference resolves, whose errors are all problem+json, and
//! that says exactly what the server accepts. The last is checked by generating requests from
//! the document itself and sending them: a schema-valid request is never refused as invalid.
//! The external tools that first found the gaps (openapi-spec-validator, schemathesis) run too,
//! installed into the target directory on first use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::http::{Caller, TestApp, spawn_app, spawn_app_with};

pub(crate) async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every `(method, path, operation)` of the document.
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

/// Every value of `key` anywhere in `value`, with its JSON pointer.
fn find_all<'a>(value: &'a Value, key: &str, at: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let pointer = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                if name == key {
                    out.push((pointer.clone(), child));
                }
                find_all(child, key, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                find_all(child, key, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => resolve(
            doc,
            doc.pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{reference} does not resolve")),
        ),
        None => schema,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut references = Vec::new();
    find_all(&doc, "$ref", String::new(), &mut references);
    assert!(references.len() > 50, "too few references to mean anything");
    for (at, reference) in references {
        let target = reference.as_str().unwrap();
        assert!(target.starts_with("#/"), "{at}: {target} is not local");
        assert!(
            doc.pointer(&target[1..]).is_some(),
            "{at}: {target} does not resolve"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let name = format!("{method} {path}");
        assert!(
            operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "{name}: operationId repeated"
        );
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{name}: no responses"
        );
        // Path templates and path parameters name the same things, and path parameters are
        // required (the 3.1 rule the validator applies).
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let declared: BTreeSet<&str> = parameters
            .iter()
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| {
                assert_eq!(parameter["required"], true, "{name}: {parameter}");
                parameter["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(templated, declared, "{name}: path parameters");
        let mut seen = BTreeSet::new();
        for parameter in &parameters {
            assert!(
                seen.insert((
                    parameter["in"].as_str().unwrap(),
                    parameter["name"].as_str().unwrap()
                )),
                "{name}: parameter repeated: {parameter}"
            );
            assert!(parameter["schema"].is_object(), "{name}: {parameter}");
        }
    }

    // Links name operations that exist, with parameters those operations take; every creation
    // links to what can be done with the unit it created.
    let all = operations(&doc);
    let by_id: BTreeMap<&str, &Value> = all
        .iter()
        .map(|(_, _, operation)| (operation["operationId"].as_str().unwrap(), operation))
        .collect();
    let mut linked = 0;
    for (method, path, operation) in &all {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let target = by_id
                    .get(link["operationId"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{method} {path} {status}: link {name}"));
                for parameter in link["parameters"].as_object().unwrap().keys() {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == parameter.as_str()),
                        "{method} {path}: link {name} sets {parameter}, which it does not take"
                    );
                }
                linked += 1;
            }
        }
    }
    for creation in [
        "create_organization",
        "create_division",
        "create_project",
        "create_site",
    ] {
        assert!(
            by_id[creation]["responses"]["201"]["links"]
                .as_object()
                .is_some_and(|links| links.len() >= 3),
            "{creation} links to too little"
        );
    }
    assert!(linked >= 15, "{linked} links");

    // Every pattern is a regular expression, and every example matches its schema's pattern.
    let mut patterns = Vec::new();
    find_all(&doc, "pattern", String::new(), &mut patterns);
    assert!(!patterns.is_empty());
    for (at, pattern) in patterns {
        let regex = regex::Regex::new(pattern.as_str().unwrap())
            .unwrap_or_else(|error| panic!("{at}: {error}"));
        let schema = doc.pointer(at.trim_end_matches("/pattern")).unwrap();
        for example in schema["examples"].as_array().into_iter().flatten() {
            assert!(
                regex.is_match(example.as_str().unwrap()),
                "{at}: example {example} does not match"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_error_is_problem_json() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut errors = 0;
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.as_str() < "400" {
                continue;
            }
            errors += 1;
            let response = resolve(&doc, response);
            let content = response["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status}: no content documented"));
            let types: Vec<&String> = content.keys().collect();
            assert_eq!(
                types,
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            // The problem itself, or a problem with extension members (readiness's checks).
            let schema = resolve(&doc, &content["application/problem+json"]["schema"]);
            let problem = &doc["components"]["schemas"]["Problem"];
            let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
            assert!(
                schema == problem || parts.iter().any(|part| resolve(&doc, part) == problem),
                "{method} {path} {status}: {schema}"
            );
        }
    }
    assert!(errors > 100, "only {errors} error responses documented");
}

/// Values drawn from a document's schemas, with real ids and positions mixed in so that
/// requests reach the rules behind the 404s.
pub(crate) struct Generator<'a> {
    doc: &'a Value,
    runner: TestRunner,
    /// Ids that exist in the caller's tenant, by path parameter name.
    known: BTreeMap<&'static str, String>,
    position: i64,
}

impl<'a> Generator<'a> {
    /// A generator with a fixed seed, so a failure reproduces.
    pub(crate) fn new(
        doc: &'a Value,
        known: BTreeMap<&'static str, String>,
        position: i64,
    ) -> Self {
        Self {
            doc,
            runner: TestRunner::new_with_rng(
                Config::default(),
                proptest::test_runner::TestRng::deterministic_rng(
                    proptest::test_runner::RngAlgorithm::ChaCha,
                ),
            ),
            known,
            position,
        }
    }
    /// A number in `range`, from the runner's seeded source.
    fn draw(&mut self, range: std::ops::RangeInclusive<i64>) -> i64 {
        range.new_tree(&mut self.runner).unwrap().current()
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.draw(0..=i64::try_from(len).unwrap() - 1)).unwrap()
    }

    fn chance(&mut self, percent: i64) -> bool {
        self.draw(0..=99) < percent
    }

    fn matching(&mut self, pattern: &str) -> String {
        // Every published pattern is anchored at both ends; the generator wants the inside.
        let inside = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap_or_else(|| panic!("pattern {pattern} is not anchored"));
        proptest::string::string_regex(inside)
            .unwrap_or_else(|error| panic!("{pattern}: {error}"))
            .new_tree(&mut self.runner)
            .unwrap()
            .current()
    }

    fn value(&mut self, name: &str, schema: &Value) -> Value {
        let schema = resolve(self.doc, schema).clone();
        if let Some(choices) = schema["oneOf"].as_array() {
            let index = self.index(choices.len());
            return self.value(name, &choices[index]);
        }
        if let Some(choices) = schema["enum"].as_array() {
            let index = self.index(choices.len());
            return choices[index].clone();
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec!["object"],
        };
        if types == ["null"] || (types.contains(&"null") && self.chance(10)) {
            return Value::Null;
        }
        match types
            .iter()
            .find(|t| **t != "null")
            .copied()
            .unwrap_or("null")
        {
            "string" => match (schema["format"].as_str(), schema["pattern"].as_str()) {
                (Some("uuid"), _) => {
                    let known = self.known.get(name).cloned();
                    match known {
                        Some(id) if self.chance(70) => json!(id),
                        _ => json!(uuid::Uuid::new_v4()),
                    }
                }
                (Some("date-time"), _) => {
                    let seconds = self.draw(0..=4_102_444_800);
                    let at = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
                    json!(at.to_rfc3339())
                }
                (Some("date"), _) => {
                    let days = self.draw(0..=2_932_896);
                    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                        + chrono::Duration::days(days);
                    json!(day.format("%Y-%m-%d").to_string())
                }
                (_, Some(pattern)) => json!(self.matching(pattern)),
                _ => json!(self.matching("^[ -~]{0,20}$")),
            },
            "integer" => {
                if name == "min_position" && self.chance(50) {
                    return json!(self.position);
                }
                let min = schema["minimum"].as_i64().unwrap_or(-1_000_000);
                let max = schema["maximum"].as_i64().unwrap_or(i64::MAX);
                let value = match self.draw(0..=3) {
                    0 => min,
                    1 => max,
                    _ => self.draw(min..=min.saturating_add(1_000).min(max)),
                };
                json!(value)
            }
            "boolean" => json!(self.chance(50)),
            "array" => {
                let min = schema["minItems"].as_i64().unwrap_or(0);
                let max = schema["maxItems"].as_i64().unwrap_or(i64::MAX).min(min + 4);
                let count = self.draw(min..=max);
                Value::Array(
                    (0..count)
                        .map(|_| self.value(name, &schema["items"]))
                        .collect(),
                )
            }
            "object" => {
                let mut object = Map::new();
                let required: BTreeSet<&str> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for (property, property_schema) in
                    schema["properties"].as_object().into_iter().flatten()
                {
                    if required.contains(property.as_str()) || self.chance(50) {
                        let value = self.value(property, property_schema);
                        object.insert(property.clone(), value);
                    }
                }
                Value::Object(object)
            }
            other => panic!("no generator for type {other} ({name}: {schema})"),
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One request built from `operation`'s parameters and body.
pub(crate) fn request(
    generator: &mut Generator,
    caller: &Caller,
    method: &str,
    path: &str,
    operation: &Value,
) -> (reqwest::RequestBuilder, String) {
    let mut url = reqwest::Url::parse(&caller.app.url("/")).unwrap();
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut segments = Vec::new();
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut path_values = BTreeMap::new();
    for parameter in &parameters {
        let name = parameter["name"].as_str().unwrap();
        let required = parameter["required"] == true;
        if !required && !generator.chance(50) {
            continue;
        }
        let value = generator.value(name, &parameter["schema"]);
        if value.is_null() {
            continue;
        }
        match parameter["in"].as_str().unwrap() {
            "path" => {
                path_values.insert(name.to_owned(), text(&value));
            }
            "query" => query.push((name.to_owned(), text(&value))),
            "header" => headers.push((name.to_owned(), text(&value))),
            other => panic!("parameter in {other}"),
        }
    }
    for segment in path.trim_start_matches('/').split('/') {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => segments.push(path_values[name].clone()),
            None => segments.push(segment.to_owned()),
        }
    }
    url.path_segments_mut().unwrap().clear().extend(&segments);
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut builder = caller
        .app
        .client
        .request(method.clone(), url.clone())
        .bearer_auth(&caller.token)
        .query(&query);
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    let mut shown = format!("{method} {url} {query:?} {headers:?}");
    let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    if body_schema.is_object() {
        let body = generator.value("body", body_schema);
        shown.push_str(&format!(" {body}"));
        builder = builder.json(&body);
    }
    (builder, shown)
}

/// Our own schema-driven check, in the spirit of schemathesis's positive phase: every
/// operation, called with inputs generated from its documented schemas, never answers that the
/// input was invalid (400, 422) nor fails (5xx). Not found (ids that exist nowhere) and conflict
/// (rules that depend on state, such as a code already taken) are legitimate answers.
#[tokio::test]
async fn requests_generated_from_the_document_are_never_refused_as_invalid() {
    // About 2,000 requests in a few seconds from one address: the rate limits (tested in
    // identity.rs) would answer many with 429 instead of what this test looks at.
    let app = spawn_app_with(|config| {
        config.api.rate_limits = vextrus_api::RateLimits::off();
    })
    .await;
    let doc = document(&app).await;
    let caller = app.caller(&["admin", "auditor", "operator"]);
    let hierarchy = caller.create_hierarchy("GEN").await;
    let mut known = BTreeMap::new();
    known.insert("organization_id", hierarchy.org.clone());
    known.insert("division_id", hierarchy.division.clone());
    known.insert("project_id", hierarchy.project.clone());
    known.insert("to_project_id", hierarchy.project.clone());
    known.insert("site_id", hierarchy.site.clone());
    let mut generator = Generator::new(&doc, known, hierarchy.position);
    const CASES: usize = 25;
    let mut answered: BTreeMap<u16, usize> = BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        for _ in 0..CASES {
            let (builder, shown) = request(&mut generator, &caller, &method, &path, &operation);
            let response = builder.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            *answered.entry(status).or_default() += 1;
            assert!(
                !matches!(status, 400 | 413 | 415 | 422 | 500..=599),
                "{shown}\n  answered {status}: {body}"
            );
            assert!(
                operation["responses"][status.to_string()].is_object(),
                "{shown}\n  answered {status}, which is not documented: {body}"
            );
        }
    }
    // The generated requests reached the rules, not only 404s.
    let succeeded: usize = answered
        .iter()
        .filter(|(status, _)| (200..300).contains(*status))
        .map(|(_, count)| count)
        .sum();
    assert!(succeeded > 200, "too few successes: {answered:?}");
}

/// A Python virtual environment under the target directory with the external checkers,
/// installed on first use (PyPI is reachable wherever the suite runs).
fn python_tools() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-tools");
    let ready = venv.join("ready-1");
    if ready.exists() {
        return venv;
    }
    let run = |program: &Path, args: &[&str]| {
        crate::cli::succeeded(Command::new(program).args(args));
    };
    let _ = std::fs::remove_dir_all(&venv);
    run(
        Path::new("python3"),
        &["-m", "venv", venv.to_str().unwrap()],
    );
    run(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "openapi-spec-validator==0.9.0",
            "schemathesis==4.32.5",
        ],
    );
    std::fs::write(&ready, "").unwrap();
    venv
}

/// The tools nobody here wrote: openapi-spec-validator accepts the document, and schemathesis
/// with every check (positive and negative data, status codes, content types, response
/// schemas, stateful links) finds nothing.
#[tokio::test]
async fn openapi_spec_validator_and_schemathesis_find_nothing() {
    let venv = tokio::task::spawn_blocking(python_tools).await.unwrap();
    // The fuzzer sends hundreds of requests to the sign-in routes from one address; their rate
    // limit (tested in identity.rs) would answer most of them with 429 before the checks it
    // wants to see, such as 401 for a missing token.
    let app = spawn_app_with(|config| {
        config.api.rate_limits = vextrus_api::RateLimits::off();
    })
    .await;
    let doc = document(&app).await;
    let file = venv.join(format!("openapi-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let validator = Command::new(venv.join("bin/openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        validator.status.success(),
        "{}",
        String::from_utf8_lossy(&validator.stdout)
    );

    let caller = app.caller(&["admin", "auditor", "operator"]);
    let schema_url = app.url("/openapi.json");
    let authorization = format!("Authorization: Bearer {}", caller.token);
    let fuzz = tokio::process::Command::new(venv.join("bin/st"))
        .args([
            "run",
            &schema_url,
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "13",
            "-H",
            &authorization,
        ])
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&fuzz.stdout);
    assert!(
        fuzz.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(report.contains("passed"), "{report}");
}
