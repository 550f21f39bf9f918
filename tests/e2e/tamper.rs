//! Tamper evidence: the hash chain and signed checkpoints catch a superuser who switches the
//! append-only trigger off and edits, deletes or swaps events, or rewrites a whole chain.

use sqlx::PgPool;
use vextrus_audit::{
    CheckpointOutcome, Finding, SigningKey, Tampering, create_checkpoints, verify_chains,
    verify_checkpoints,
};
use vextrus_commands::{ActorId, CommandMetadata};
use vextrus_domain::TenantId;
use vextrus_domain::organization::OrganizationCommand;

use crate::support::*;

/// A command's metadata with every audit field filled, so every field goes through the hash.
fn full_metadata() -> CommandMetadata {
    let mut metadata = CommandMetadata::new(ActorId::parse("auditee-1").unwrap())
        .with_idempotency_key("test", &uuid::Uuid::now_v7().to_string())
        .with_causation_id(uuid::Uuid::now_v7())
        .with_request_id("req-tamper");
    metadata.actor_roles = vec!["admin".into(), "project-manager".into()];
    metadata.client_address = Some("10.1.2.3".parse().unwrap());
    // Quotes, a backslash, non-ASCII and control characters: the escaping must agree with the
    // database's, byte for byte.
    metadata.user_agent = Some("tamper-test/1.0 (\"quoted\", ünïcode, \\)\t\u{1}\u{7f}".into());
    metadata.project_id = Some(uuid::Uuid::now_v7());
    metadata.site_id = Some(uuid::Uuid::now_v7());
    metadata.request_metadata.insert(
        "note".into(),
        serde_json::json!({"nested": [1, "two", null]}),
    );
    metadata
}

/// One organization in each of two tenants, each stream with 4 events (created, 3 renames).
/// Returns (tenant, stream id) pairs.
async fn seed(fx: &Fixture) -> Vec<(TenantId, String)> {
    let mut streams = Vec::new();
    for code in ["AAA", "BBB"] {
        let tenant = TenantId::new();
        let (_, stream) = fx.create_organization(tenant, code).await;
        for n in 1..=3 {
            fx.execute(
                tenant,
                &stream,
                OrganizationCommand::RenameOrganization {
                    name: name(&format!("Renamed {n}")),
                },
                &full_metadata(),
                None,
            )
            .await
            .unwrap();
        }
        streams.push((tenant, stream));
    }
    // Checkpoints cover what lies below the watermark, which other tests' transactions hold.
    settle(&fx.owner).await;
    streams
}

/// Runs `statement` as the superuser with the append-only trigger switched off, as an attacker
/// with full database access would.
async fn tamper(owner: &PgPool, statement: &str) {
    let mut tx = owner.begin().await.unwrap();
    for sql in [
        "alter table events disable trigger events_no_update_or_delete",
        statement,
        "alter table events enable always trigger events_no_update_or_delete",
    ] {
        sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn position(owner: &PgPool, tenant: TenantId, stream: &str, sequence: i64) -> i64 {
    sqlx::query_scalar(
        "select global_position from events where tenant_id = $1 and aggregate_id = $2 and sequence = $3",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .bind(sequence)
    .fetch_one(owner)
    .await
    .unwrap()
}

fn finding(
    tenant: TenantId,
    stream: &str,
    sequence: i64,
    global_position: i64,
    tampering: Tampering,
) -> Finding {
    Finding {
        tenant_id: tenant.as_uuid(),
        aggregate_type: "organization".into(),
        aggregate_id: stream.to_owned(),
        sequence,
        global_position,
        tampering,
    }
}

async fn findings(owner: &PgPool) -> Vec<Finding> {
    verify_chains(owner, None, |_| {}).await.unwrap().findings
}

#[tokio::test]
async fn verify_passes_on_an_untouched_log_and_names_an_edited_payload_or_metadata() {
    let fx = fixture().await;
    let streams = seed(&fx).await;
    let report = verify_chains(&fx.owner, None, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.tenants, report.streams, report.events), (2, 2, 8));
    // One tenant only.
    let one = verify_chains(&fx.owner, Some(streams[0].0), |_| {})
        .await
        .unwrap();
    assert_eq!((one.tenants, one.events), (1, 4));

    let (tenant, stream) = &streams[0];
    let edited = position(&fx.owner, *tenant, stream, 2).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set payload = jsonb_set(payload, '{{name}}', '\"Forged Ltd\"') \
             where global_position = {edited}"
        ),
    )
    .await;
    assert_eq!(
        findings(&fx.owner).await,
        vec![finding(*tenant, stream, 2, edited, Tampering::Altered)]
    );

    // Metadata is covered as much as content: who acted, from where.
    let (tenant, stream) = &streams[1];
    let edited = position(&fx.owner, *tenant, stream, 3).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set actor = 'someone-else', client_address = '192.0.2.1' \
             where global_position = {edited}"
        ),
    )
    .await;
    let found = findings(&fx.owner).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[1..],
        [finding(*tenant, stream, 3, edited, Tampering::Altered)]
    );
}

#[tokio::test]
async fn verify_names_a_deleted_event_and_both_events_of_a_swap() {
    let fx = fixture().await;
    let streams = seed(&fx).await;

    let (tenant, stream) = &streams[0];
    let after_gap = position(&fx.owner, *tenant, stream, 3).await;
    let deleted = position(&fx.owner, *tenant, stream, 2).await;
    tamper(
        &fx.owner,
        &format!("delete from events where global_position = {deleted}"),
    )
    .await;
    assert_eq!(
        findings(&fx.owner).await,
        vec![finding(
            *tenant,
            stream,
            3,
            after_gap,
            Tampering::Missing { first: 2, last: 2 }
        )]
    );

    // Swap the order of two events of the other stream: each now sits where its hash says it
    // does not belong, and the event after them follows the wrong predecessor.
    let (tenant, stream) = &streams[1];
    let second = position(&fx.owner, *tenant, stream, 2).await;
    let third = position(&fx.owner, *tenant, stream, 3).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set sequence = 1000 where global_position = {second};
             update events set sequence = 2 where global_position = {third};
             update events set sequence = 3 where global_position = {second};"
        ),
    )
    .await;
    let found = findings(&fx.owner).await;
    assert_eq!(
        found[1..],
        [
            finding(*tenant, stream, 2, third, Tampering::Altered),
            finding(*tenant, stream, 3, second, Tampering::Altered),
            finding(
                *tenant,
                stream,
                4,
                position(&fx.owner, *tenant, stream, 4).await,
                Tampering::Unlinked
            ),
        ],
        "{found:?}"
    );
}

/// Rewrites the hash chain of one stream after an edit, the way an attacker who knows the hash
/// definition would: the chain alone then holds.
async fn rewrite_chain(owner: &PgPool, tenant: TenantId, stream: &str) {
    tamper(
        owner,
        &format!(
            "do $$
             declare e events; previous bytea;
             begin
                 for e in select * from events where tenant_id = '{tenant}' and aggregate_id = '{stream}'
                          order by sequence loop
                     update events set previous_hash = previous, hash = vextrus_event_hash(e, previous)
                     where tenant_id = e.tenant_id and aggregate_id = e.aggregate_id and sequence = e.sequence
                     returning hash into previous;
                 end loop;
             end $$"
        ),
    )
    .await;
}

async fn hash_versions(owner: &PgPool, tenant: TenantId, stream: &str) -> Vec<i16> {
    sqlx::query_scalar(
        "select hash_version from events where tenant_id = $1 and aggregate_id = $2 order by sequence",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .fetch_all(owner)
    .await
    .unwrap()
}

/// Events appended before migration 0029 keep hash version 1. Each event is checked by the version
/// it names, a stream goes on from a version-1 head with version 2, and changing the version an
/// event names is an alteration like any other.
#[tokio::test]
async fn events_of_both_hash_versions_verify_and_a_changed_version_is_named() {
    let fx = fixture().await;
    let streams = seed(&fx).await;
    let (tenant, stream) = &streams[0];
    assert_eq!(
        hash_versions(&fx.owner, *tenant, stream).await,
        [2, 2, 2, 2]
    );
    // The stream as a log from before migration 0029 holds it: chained with version 1.
    tamper(
        &fx.owner,
        &format!(
            "update events set hash_version = 1 where tenant_id = '{tenant}' and aggregate_id = '{stream}'"
        ),
    )
    .await;
    rewrite_chain(&fx.owner, *tenant, stream).await;
    let report = verify_chains(&fx.owner, None, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);

    // The append call chains the next event to the version-1 head, with version 2.
    fx.execute(
        *tenant,
        stream,
        OrganizationCommand::RenameOrganization {
            name: name("Renamed after the upgrade"),
        },
        &full_metadata(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        hash_versions(&fx.owner, *tenant, stream).await,
        [1, 1, 1, 1, 2]
    );
    let report = verify_chains(&fx.owner, None, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.streams, report.events), (2, 9));

    // Naming the other version, or one without a definition, breaks the event's own hash.
    let downgraded = position(&fx.owner, *tenant, stream, 5).await;
    let upgraded = position(&fx.owner, *tenant, stream, 2).await;
    let (other_tenant, other_stream) = &streams[1];
    let unknown = position(&fx.owner, *other_tenant, other_stream, 3).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set hash_version = 1 where global_position = {downgraded};
             update events set hash_version = 2 where global_position = {upgraded};
             update events set hash_version = 3 where global_position = {unknown}"
        ),
    )
    .await;
    let mut found = findings(&fx.owner).await;
    found.sort_by_key(|finding| finding.global_position);
    let mut expected = vec![
        finding(*tenant, stream, 2, upgraded, Tampering::Altered),
        finding(*tenant, stream, 5, downgraded, Tampering::Altered),
        finding(*other_tenant, other_stream, 3, unknown, Tampering::Altered),
    ];
    expected.sort_by_key(|finding| finding.global_position);
    assert_eq!(found, expected);
}

#[tokio::test]
async fn a_checkpoint_verifies_until_the_log_before_it_is_rewritten() {
    let fx = fixture().await;
    let streams = seed(&fx).await;
    let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    let trusted = key.public_key().to_vec();

    let recorded = create_checkpoints(&fx.owner, &key, None).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(
        recorded
            .iter()
            .all(|checkpoint| checkpoint.statement.events == 4)
    );
    let checks = verify_checkpoints(&fx.owner, None, Some(&trusted))
        .await
        .unwrap();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|check| check.is_valid()), "{checks:?}");

    // Events after a checkpoint do not disturb it.
    let (tenant_a, stream_a) = &streams[0];
    fx.execute(
        *tenant_a,
        stream_a,
        OrganizationCommand::RenameOrganization {
            name: name("Later Name"),
        },
        &full_metadata(),
        None,
    )
    .await
    .unwrap();
    let checks = verify_checkpoints(&fx.owner, None, Some(&trusted))
        .await
        .unwrap();
    assert!(checks.iter().all(|check| check.is_valid()), "{checks:?}");

    // Another key's view: validly signed, but not by the key the auditor trusts.
    let stranger = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    let checks = verify_checkpoints(&fx.owner, None, Some(stranger.public_key()))
        .await
        .unwrap();
    assert!(
        checks
            .iter()
            .all(|check| matches!(check.outcome, CheckpointOutcome::UntrustedKey { .. }))
    );

    // An edit before the checkpoint, with the chain recomputed: the chain holds, the checkpoint
    // does not.
    let edited = position(&fx.owner, *tenant_a, stream_a, 2).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set payload = jsonb_set(payload, '{{name}}', '\"Forged Ltd\"') \
             where global_position = {edited}"
        ),
    )
    .await;
    rewrite_chain(&fx.owner, *tenant_a, stream_a).await;
    assert_eq!(
        findings(&fx.owner).await,
        vec![],
        "the rewrite is consistent"
    );

    // The last event of the other tenant's stream removed: no link breaks, the count does.
    let (tenant_b, stream_b) = &streams[1];
    let last = position(&fx.owner, *tenant_b, stream_b, 4).await;
    tamper(
        &fx.owner,
        &format!("delete from events where global_position = {last}"),
    )
    .await;
    assert_eq!(findings(&fx.owner).await, vec![]);

    let checks = verify_checkpoints(&fx.owner, None, Some(&trusted))
        .await
        .unwrap();
    let outcome_of = |tenant: TenantId| {
        checks
            .iter()
            .find(|check| check.tenant_id == tenant.as_uuid())
            .map(|check| check.outcome.clone())
            .unwrap()
    };
    assert_eq!(
        outcome_of(*tenant_a),
        CheckpointOutcome::LogChanged {
            events_then: 4,
            events_now: 4,
            streams_then: 1,
            streams_now: 1,
            heads_match: false,
        }
    );
    assert_eq!(
        outcome_of(*tenant_b),
        CheckpointOutcome::LogChanged {
            events_then: 4,
            events_now: 3,
            streams_then: 1,
            streams_now: 1,
            heads_match: false,
        }
    );

    // A forged checkpoint row (the statement edited, the old signature kept) fails its signature.
    sqlx::raw_sql(
        "alter table audit_checkpoints disable trigger audit_checkpoints_append_only;
         update audit_checkpoints set message = replace(message, 'events: 4', 'events: 3');
         alter table audit_checkpoints enable always trigger audit_checkpoints_append_only;",
    )
    .execute(&fx.owner)
    .await
    .unwrap();
    let checks = verify_checkpoints(&fx.owner, None, Some(&trusted))
        .await
        .unwrap();
    assert!(
        checks
            .iter()
            .all(|check| check.outcome == CheckpointOutcome::BadSignature),
        "{checks:?}"
    );
}

#[tokio::test]
async fn checkpoints_are_append_only_and_chains_refuse_gaps_and_forged_hashes() {
    let fx = fixture().await;
    let streams = seed(&fx).await;
    let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    create_checkpoints(&fx.owner, &key, None).await.unwrap();
    for statement in [
        "update audit_checkpoints set event_count = 0",
        "delete from audit_checkpoints",
        "truncate audit_checkpoints",
    ] {
        let error = sqlx::query(statement).execute(&fx.owner).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }

    let writer = fx
        .db
        .role_pool(vextrus_commands::DbRole::Writer, 1)
        .await
        .unwrap();
    let (tenant, stream) = &streams[0];
    // The hash is the database's to compute.
    let mut tx = vextrus_commands::tenant::begin(&writer, *tenant)
        .await
        .unwrap();
    let error = sqlx::query(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                             actor, command_id, correlation_id, hash)
         values ($1, 'organization', $2, 5, 'Forged', '1', '{}', 'mallory', gen_random_uuid(), gen_random_uuid(), '\\x00')",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(error.to_string().contains("permission denied"), "{error}");
    drop(tx);
    // A stream has no gaps: sequence 7 cannot follow 4, neither through the append call (the
    // writer's only way in: a command that claims the stream is further on than it is conflicts
    // and appends nothing) nor inserted by the owner.
    let head: i64 = sqlx::query_scalar(
        "select max(sequence) from events where tenant_id = $1 and aggregate_type = 'organization' and aggregate_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .fetch_one(&fx.owner)
    .await
    .unwrap();
    let gap = head + 3;
    let before = event_count(&fx.owner).await;
    let (code, constraint): (Option<String>, Option<String>) = sqlx::query_as(
        "select error_code, error_constraint
         from vextrus_append(array[$1]::uuid[], array['organization'], array[$2], array[$3 - 1]::bigint[], array[1],
                             array['mallory'], array['{}'], array[gen_random_uuid()], array[null]::text[],
                             array[gen_random_uuid()], array[null]::uuid[], array[null]::text[], array[null]::inet[],
                             array[null]::text[], array[null]::uuid[], array[null]::uuid[], array['{}']::jsonb[],
                             array[false], array[1], array['Forged'], array['1'], array['{}']::jsonb[],
                             '{}'::int[], '{}'::text[], '{}'::text[], '{}'::int[], '{}'::text[], '{}'::text[],
                             '{}'::bigint[], '{}'::boolean[])",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .bind(gap)
    .fetch_one(&writer)
    .await
    .unwrap();
    assert_eq!(code.as_deref(), Some("23505"));
    assert_eq!(constraint.as_deref(), Some("events_pkey"));
    assert_eq!(event_count(&fx.owner).await, before, "nothing appended");
    let error = sqlx::query(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                             actor, command_id, correlation_id)
         values ($1, 'organization', $2, $3, 'Forged', '1', '{}', 'mallory', gen_random_uuid(), gen_random_uuid())",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .bind(gap)
    .execute(&fx.owner)
    .await
    .unwrap_err();
    assert!(error.to_string().contains("no gaps"), "{error}");
}

#[tokio::test]
async fn the_cli_signs_checkpoints_and_verify_exits_non_zero_naming_the_altered_event() {
    let fx = fixture().await;
    let streams = seed(&fx).await;
    let dir = std::env::temp_dir().join(format!("vextrus-audit-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("audit-key.pem");
    let run = |args: &[&str]| {
        crate::cli::vextrus(&dir)
            .args(args)
            .env("DATABASE_URL", &fx.db.url)
            .env("VEXTRUS_AUDIT_KEY_FILE", &key_file)
            .output()
            .unwrap()
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let keygen = run(&["audit", "keygen", "--out", key_file.to_str().unwrap()]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    assert!(text(&keygen.stdout).starts_with("-----BEGIN PUBLIC KEY-----"));
    let again = run(&["audit", "keygen", "--out", key_file.to_str().unwrap()]);
    assert!(!again.status.success(), "keygen must not overwrite a key");

    let checkpoint = run(&["audit", "checkpoint"]);
    assert!(checkpoint.status.success(), "{}", text(&checkpoint.stderr));
    assert!(text(&checkpoint.stdout).contains("2 checkpoint(s) signed"));

    let verify = run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("log intact"));

    let (tenant, stream) = &streams[1];
    let edited = position(&fx.owner, *tenant, stream, 2).await;
    tamper(
        &fx.owner,
        &format!(
            "update events set event_type = 'OrganizationArchived' where global_position = {edited}"
        ),
    )
    .await;
    let verify = run(&["audit", "verify", "--tenant", &tenant.to_string()]);
    let stdout = text(&verify.stdout);
    assert!(!verify.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("ALTERED  position {edited} ")),
        "{stdout}"
    );
    assert!(stdout.contains("LOG TAMPERED"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
