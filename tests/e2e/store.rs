//! The event store: round trips, optimistic concurrency, idempotency, uniqueness, tenancy.

use vextrus_commands::{ExecuteError, Version};
use vextrus_domain::TenantId;
use vextrus_domain::ids::{DivisionId, OrganizationId};
use vextrus_domain::organization::{
    Organization, OrganizationCommand, OrganizationError, OrganizationEvent,
};

use crate::support::*;

fn create_division(n: usize) -> OrganizationCommand {
    OrganizationCommand::CreateDivision {
        division_id: DivisionId::new(),
        name: name(&format!("Division {n}")),
        code: code(&format!("D{n}")),
    }
}

#[tokio::test]
async fn appended_events_load_back_in_order_with_their_metadata() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let org = OrganizationId::new();
    let id = org.to_string();
    let meta = metadata();

    let created = fx
        .execute(tenant, &id, create_organization(org, "MBL"), &meta, None)
        .await
        .unwrap();
    assert_eq!(created.version, Version::new(1));
    assert_eq!(created.event_count, 1);
    assert!(!created.repeated);

    let division = DivisionId::new();
    let command = OrganizationCommand::CreateDivision {
        division_id: division,
        name: name("Dhaka"),
        code: code("DHK"),
    };
    let second = fx
        .execute(tenant, &id, command, &metadata(), Some(Version::new(1)))
        .await
        .unwrap();
    assert_eq!(second.version, Version::new(2));
    assert!(second.last_position > created.last_position);

    let stream = fx
        .store
        .load_stream(tenant, "organization", &id)
        .await
        .unwrap();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(stream[0].event_type, "OrganizationCreated");
    assert_eq!(stream[0].payload["code"], "MBL");
    assert_eq!(stream[0].actor, "user-7");
    assert_eq!(stream[0].command_id, meta.command_id().as_uuid());
    assert_eq!(stream[0].correlation_id, meta.correlation_id);
    assert_eq!(stream[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(stream[0].tenant_id, tenant);
    assert_eq!(Some(stream[1].global_position), second.last_position);
    let decoded: OrganizationEvent = stream[1].decode().unwrap();
    assert_eq!(
        decoded,
        OrganizationEvent::DivisionCreated {
            division_id: division,
            name: name("Dhaka"),
            code: code("DHK")
        }
    );

    let (aggregate, version) = fx
        .store
        .load_aggregate::<Organization>(tenant, &id)
        .await
        .unwrap();
    assert_eq!(version, Version::new(2));
    assert_eq!(aggregate.id(), Some(org));
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_carrying_the_current_version() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;

    let rename = OrganizationCommand::RenameOrganization {
        name: name("Meghna Group"),
    };
    let error = fx
        .execute(tenant, &id, rename, &metadata(), Some(Version::NONE))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecuteError::Conflict { current, expected: Some(Version::NONE) } if current == Version::new(1)),
        "{error:?}"
    );
    assert_eq!(event_count(&fx.owner).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commands_on_one_version_have_exactly_one_winner() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;

    let outcomes = race(12, |n| {
        let (store, id) = (fx.store.clone(), id.clone());
        async move {
            store
                .execute::<Organization>(
                    tenant,
                    &id,
                    create_division(n),
                    &(),
                    &metadata(),
                    Some(Version::new(1)),
                )
                .await
        }
    })
    .await;
    let mut winners = 0;
    for outcome in outcomes {
        match outcome {
            Ok(outcome) => {
                winners += 1;
                assert_eq!(outcome.version, Version::new(2));
            }
            Err(ExecuteError::Conflict { current, .. }) => assert_eq!(current, Version::new(2)),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        fx.store
            .load_stream(tenant, "organization", &id)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_retry_after_conflicts_leave_a_gap_free_stream() {
    const WRITERS: usize = 8;
    let fx = fixture().await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;

    let versions = race(WRITERS, |n| {
        let (store, id) = (fx.store.clone(), id.clone());
        async move {
            loop {
                match store
                    .execute::<Organization>(
                        tenant,
                        &id,
                        create_division(n),
                        &(),
                        &metadata(),
                        None,
                    )
                    .await
                {
                    Ok(outcome) => return outcome.version.get(),
                    Err(ExecuteError::Conflict { .. }) => continue,
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }
    })
    .await;
    let mut versions = versions;
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=WRITERS as i64 + 1).collect::<Vec<_>>(),
        "each version won exactly once"
    );

    let stream = fx
        .store
        .load_stream(tenant, "organization", &id)
        .await
        .unwrap();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=WRITERS as i64 + 1).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_repeated_command_id_returns_the_first_outcome_and_writes_nothing() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let org = OrganizationId::new();
    let id = org.to_string();
    let meta = metadata().with_idempotency_key("test", "create-mbl-1");

    let first = fx
        .execute(tenant, &id, create_organization(org, "MBL"), &meta, None)
        .await
        .unwrap();
    // Executing "create" again would be refused as a duplicate; as a repeat it is answered instead.
    let again = fx
        .execute(tenant, &id, create_organization(org, "MBL"), &meta, None)
        .await
        .unwrap();
    assert!(again.repeated);
    assert_eq!(
        (again.version, again.last_position, again.event_count),
        (first.version, first.last_position, first.event_count)
    );
    assert_eq!(event_count(&fx.owner).await, 1);
}

#[tokio::test]
async fn only_commands_with_an_idempotency_key_are_recorded_for_repeats() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let (keyed, unkeyed) = (OrganizationId::new(), OrganizationId::new());
    let key = metadata().with_idempotency_key("test", "create-keyed");
    fx.execute(
        tenant,
        &keyed.to_string(),
        create_organization(keyed, "K"),
        &key,
        None,
    )
    .await
    .unwrap();
    let plain = metadata();
    fx.execute(
        tenant,
        &unkeyed.to_string(),
        create_organization(unkeyed, "U"),
        &plain,
        None,
    )
    .await
    .unwrap();

    let recorded: Vec<uuid::Uuid> = sqlx::query_scalar("select command_id from commands")
        .fetch_all(&fx.owner)
        .await
        .unwrap();
    assert_eq!(recorded, vec![key.command_id().as_uuid()]);
    // The unkeyed command is still traceable through its events.
    let traced: i64 = sqlx::query_scalar("select count(*) from events where command_id = $1")
        .bind(plain.command_id().as_uuid())
        .fetch_one(&fx.owner)
        .await
        .unwrap();
    assert_eq!(traced, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_command_write_it_once() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;
    let meta = metadata().with_idempotency_key("test", "add-dhaka");
    let command = OrganizationCommand::CreateDivision {
        division_id: DivisionId::new(),
        name: name("Dhaka"),
        code: code("DHK"),
    };

    let outcomes = race(8, |_| {
        let (store, id, meta, command) =
            (fx.store.clone(), id.clone(), meta.clone(), command.clone());
        async move {
            store
                .execute::<Organization>(tenant, &id, command, &(), &meta, None)
                .await
        }
    })
    .await;
    let outcomes: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.expect("a repeat is answered, never refused"))
        .collect();
    assert_eq!(outcomes.iter().filter(|o| !o.repeated).count(), 1);
    assert!(
        outcomes
            .iter()
            .all(|o| o.version == Version::new(2) && o.last_position == outcomes[0].last_position)
    );
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn a_command_id_reused_on_another_stream_is_refused() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let meta = metadata().with_idempotency_key("test", "k");
    let first = OrganizationId::new();
    fx.execute(
        tenant,
        &first.to_string(),
        create_organization(first, "A"),
        &meta,
        None,
    )
    .await
    .unwrap();
    let second = OrganizationId::new();
    let error = fx
        .execute(
            tenant,
            &second.to_string(),
            create_organization(second, "B"),
            &meta,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecuteError::CommandIdReused { ref aggregate_id, .. } if *aggregate_id == first.to_string()),
        "{error:?}"
    );
    assert_eq!(event_count(&fx.owner).await, 1);
}

#[tokio::test]
async fn a_rejected_command_writes_nothing() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let org = OrganizationId::new();
    let error = fx
        .execute(
            tenant,
            &org.to_string(),
            OrganizationCommand::ArchiveOrganization,
            &metadata(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ExecuteError::Rejected(OrganizationError::OrganizationNotFound)
        ),
        "{error:?}"
    );
    assert_eq!(event_count(&fx.owner).await, 0);
    let commands: i64 = sqlx::query_scalar("select count(*) from commands")
        .fetch_one(&fx.owner)
        .await
        .unwrap();
    assert_eq!(commands, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_code_is_unique_in_its_tenant_even_under_races() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let outcomes = race(6, |_| {
        let store = fx.store.clone();
        async move {
            let org = OrganizationId::new();
            store
                .execute::<Organization>(
                    tenant,
                    &org.to_string(),
                    create_organization(org, "mbl"),
                    &(),
                    &metadata(),
                    None,
                )
                .await
        }
    })
    .await;
    let mut created = 0;
    for outcome in outcomes {
        match outcome {
            Ok(_) => created += 1,
            Err(ExecuteError::ValueTaken { scope, value }) => assert_eq!(
                (scope.as_str(), value.as_str()),
                ("organization.code", "MBL")
            ),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(event_count(&fx.owner).await, 1);

    // Another tenant has its own namespace of codes.
    fx.create_organization(TenantId::new(), "MBL").await;
}

#[tokio::test]
async fn the_same_aggregate_id_in_two_tenants_is_two_streams() {
    let fx = fixture().await;
    let (tenant_a, tenant_b) = (TenantId::new(), TenantId::new());
    let org = OrganizationId::new();
    let id = org.to_string();
    fx.execute(
        tenant_a,
        &id,
        create_organization(org, "MBL"),
        &metadata(),
        None,
    )
    .await
    .unwrap();

    assert!(
        fx.store
            .load_stream(tenant_b, "organization", &id)
            .await
            .unwrap()
            .is_empty(),
        "B sees nothing of A's stream"
    );
    let rename = OrganizationCommand::RenameOrganization {
        name: name("Hijacked"),
    };
    let error = fx
        .execute(tenant_b, &id, rename, &metadata(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ExecuteError::Rejected(OrganizationError::OrganizationNotFound)
        ),
        "{error:?}"
    );

    let b = fx
        .execute(
            tenant_b,
            &id,
            create_organization(org, "MBL"),
            &metadata(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        b.version,
        Version::new(1),
        "B's stream starts at 1 beside A's"
    );
    assert_eq!(
        fx.store
            .load_stream(tenant_a, "organization", &id)
            .await
            .unwrap()[0]
            .tenant_id,
        tenant_a
    );
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn declaring_a_new_stream_that_exists_is_a_conflict_even_when_the_command_would_be_refused() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let org = OrganizationId::new();
    let id = org.to_string();
    fx.execute(
        tenant,
        &id,
        create_organization(org, "MBL"),
        &metadata(),
        Some(Version::NONE),
    )
    .await
    .unwrap();

    // Accepted on an empty stream, so only the primary key catches it.
    let again = fx
        .execute(
            tenant,
            &id,
            create_organization(org, "MBX"),
            &metadata(),
            Some(Version::NONE),
        )
        .await;
    assert!(
        matches!(again, Err(ExecuteError::Conflict { current, .. }) if current == Version::new(1)),
        "{again:?}"
    );
    // Refused on an empty stream (nothing to rename), but the stream is not empty.
    let rename = OrganizationCommand::RenameOrganization {
        name: name("Meghna Group"),
    };
    let refused = fx
        .execute(tenant, &id, rename, &metadata(), Some(Version::NONE))
        .await;
    assert!(
        matches!(refused, Err(ExecuteError::Conflict { current, .. }) if current == Version::new(1)),
        "{refused:?}"
    );
    assert_eq!(event_count(&fx.owner).await, 1);
    let claims: i64 = sqlx::query_scalar("select count(*) from unique_values")
        .fetch_one(&fx.owner)
        .await
        .unwrap();
    assert_eq!(
        claims, 1,
        "the refused creation's code claim was rolled back with it"
    );
}

/// A burst of commands from many clients is appended in batches (group commit): every command
/// gets its own outcome (created, a taken code, a conflict on a stream another command of the
/// burst moved), streams stay gap-free and every hash chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_commands_appended_together_keeps_each_outcome_and_every_chain() {
    let fx = fixture().await;
    let tenants = [TenantId::new(), TenantId::new()];
    let (_, shared) = fx.create_organization(tenants[0], "SHR").await;
    let outcomes = race(60, |n| {
        let (store, shared) = (fx.store.clone(), shared.clone());
        let tenant = tenants[n % 2];
        async move {
            match n % 3 {
                // A fresh organization; codes repeat once in each tenant.
                0 | 1 => {
                    let org = OrganizationId::new();
                    let code = format!("C{}", n / 4);
                    store
                        .execute::<Organization>(
                            tenant,
                            &org.to_string(),
                            create_organization(org, &code),
                            &(),
                            &metadata(),
                            None,
                        )
                        .await
                        .map(|outcome| (n, outcome))
                }
                // A division on the shared organization, all decided on its first version.
                _ => store
                    .execute::<Organization>(
                        tenants[0],
                        &shared,
                        create_division(n),
                        &(),
                        &metadata(),
                        Some(Version::new(1)),
                    )
                    .await
                    .map(|outcome| (n, outcome)),
            }
        }
    })
    .await;
    let (mut created, mut taken, mut divisions, mut conflicts) = (0, 0, 0, 0);
    for outcome in outcomes {
        match outcome {
            Ok((n, outcome)) if n % 3 == 2 => {
                divisions += 1;
                assert_eq!(outcome.version, Version::new(2));
            }
            Ok((_, outcome)) => {
                created += 1;
                assert_eq!(outcome.version, Version::new(1));
                assert!(outcome.last_position.is_some());
            }
            Err(ExecuteError::ValueTaken { scope, .. }) => {
                assert_eq!(scope, "organization.code");
                taken += 1;
            }
            Err(ExecuteError::Conflict { current, .. }) => {
                assert_eq!(current, Version::new(2));
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(divisions, 1, "one division on version 1 wins");
    assert_eq!(conflicts, 19);
    // 40 creations; per tenant, each code is asked for by the creations whose n / 4 match.
    let mut codes = std::collections::HashSet::new();
    for n in (0..60).filter(|n| n % 3 != 2) {
        codes.insert((n % 2, n / 4));
    }
    assert_eq!(created, codes.len(), "one organization per tenant and code");
    assert_eq!(created + taken, 40);
    assert_eq!(event_count(&fx.owner).await, 1 + created as i64 + 1);
    let report = vextrus_audit::verify_chains(&fx.owner, None, |_| {})
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// A second store on the same database: another process appending to the same streams.
async fn another_process(fx: &Fixture) -> vextrus_commands::EventStore {
    vextrus_commands::EventStore::new(
        fx.db
            .role_pool(vextrus_commands::DbRole::Writer, 2)
            .await
            .unwrap(),
    )
}

async fn rename(
    store: &vextrus_commands::EventStore,
    tenant: TenantId,
    id: &str,
    to: &str,
) -> Result<vextrus_commands::CommandOutcome, ExecuteError<OrganizationError>> {
    store
        .execute::<Organization>(
            tenant,
            id,
            OrganizationCommand::RenameOrganization { name: name(to) },
            &(),
            &metadata(),
            None,
        )
        .await
}

/// A store decides a stream's next command on the state its last command left, without loading
/// the stream. A second store stands for another process appending to the same stream: the
/// first store's state is then stale, and what it decides on it must be decided again from the
/// stream as stored before it is answered.
#[tokio::test]
async fn a_kept_stream_state_that_another_process_moved_on_from_is_decided_again() {
    let fx = fixture().await;
    let other = another_process(&fx).await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;
    let renamed = rename(&fx.store, tenant, &id, "Alpha Builders")
        .await
        .unwrap();
    assert_eq!(renamed.version, Version::new(2));
    assert_eq!(
        rename(&other, tenant, &id, "Beta Builders")
            .await
            .unwrap()
            .version,
        Version::new(3)
    );

    // Appending on version 2 conflicts; decided again on version 3, the rename goes through.
    let outcome = rename(&fx.store, tenant, &id, "Gamma Builders")
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.event_count), (Version::new(4), 1));

    // Nothing to do on the kept state (already "Gamma") is not the answer once the other
    // process has renamed it again: the rename back is appended.
    rename(&other, tenant, &id, "Delta Builders").await.unwrap();
    let outcome = rename(&fx.store, tenant, &id, "Gamma Builders")
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.event_count), (Version::new(6), 1));
    // Now the kept state is current: renaming to the same name changes nothing.
    let outcome = rename(&fx.store, tenant, &id, "Gamma Builders")
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.event_count), (Version::new(6), 0));

    // An expected version is checked against the stream as stored, not the kept state.
    rename(&other, tenant, &id, "Epsilon Builders")
        .await
        .unwrap();
    let error = fx
        .store
        .execute::<Organization>(
            tenant,
            &id,
            OrganizationCommand::RenameOrganization {
                name: name("Zeta Builders"),
            },
            &(),
            &metadata(),
            Some(Version::new(6)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecuteError::Conflict { current, .. } if current == Version::new(7)),
        "{error:?}"
    );

    let names: Vec<String> = fx
        .store
        .load_stream(tenant, "organization", &id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|event| match event.decode::<OrganizationEvent>() {
            Ok(OrganizationEvent::OrganizationRenamed { name, .. }) => Some(name.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "Alpha Builders",
            "Beta Builders",
            "Gamma Builders",
            "Delta Builders",
            "Gamma Builders",
            "Epsilon Builders"
        ]
    );
}

/// A refusal decided on a stale kept state is checked against the stored stream (the other
/// process created the division this store's state has never heard of), and so is a conflict
/// (the other process archived the organization: the rename is refused, not a conflict).
#[tokio::test]
async fn a_refusal_or_a_conflict_on_a_kept_state_is_answered_from_the_stored_stream() {
    let fx = fixture().await;
    let other = another_process(&fx).await;
    let tenant = TenantId::new();
    let (_, id) = fx.create_organization(tenant, "MBL").await;
    // A creation is not kept; the stream's second command is.
    rename(&fx.store, tenant, &id, "MBL Builders")
        .await
        .unwrap();
    let division_id = DivisionId::new();
    other
        .execute::<Organization>(
            tenant,
            &id,
            OrganizationCommand::CreateDivision {
                division_id,
                name: name("Roads"),
                code: code("RD"),
            },
            &(),
            &metadata(),
            None,
        )
        .await
        .unwrap();
    let outcome = fx
        .store
        .execute::<Organization>(
            tenant,
            &id,
            OrganizationCommand::RenameDivision {
                division_id,
                name: name("Roads and Bridges"),
            },
            &(),
            &metadata(),
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.event_count), (Version::new(4), 1));

    other
        .execute::<Organization>(
            tenant,
            &id,
            OrganizationCommand::ArchiveDivision { division_id },
            &(),
            &metadata(),
            None,
        )
        .await
        .unwrap();
    other
        .execute::<Organization>(
            tenant,
            &id,
            OrganizationCommand::ArchiveOrganization,
            &(),
            &metadata(),
            None,
        )
        .await
        .unwrap();
    let error = rename(&fx.store, tenant, &id, "Renamed Builders")
        .await
        .unwrap_err();
    assert!(matches!(error, ExecuteError::Rejected(_)), "{error:?}");
    assert_eq!(event_count(&fx.owner).await, 6, "nothing appended");
}
