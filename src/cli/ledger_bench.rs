//! `vextrus bench ledger`: the posting path against a raw INSERT and the classic SQL ledger
//! that updates a balance row per account, then report queries over a million posted lines.
//!
//! Throughput: journal entries of three lines, each touching the same two hot accounts (cash and
//! a cost account) and one of 1,000 others, at 1 and 16 clients, the systems taking turns in
//! rounds on one server:
//!
//! - `vextrus`: the real posting path, [`EventStore::execute_journal`]: every rule, the read set
//!   of the ledger and the hierarchy (design.md D12), the audit hash chain;
//! - `raw`: one INSERT of the same event row into a copy of `events` without triggers: the ceiling;
//! - `balance-rows`: an interactive transaction that inserts the entry and its lines, then
//!   updates one balance row per account, then commits (how ERPNext and Formance post);
//! - `balance-rows-1`: the same in one statement (a CTE inserting the lines and updating the
//!   balances).
//!
//! Every cell counts the rows it wrote against the entries it reported.
//!
//! Reports: a million lines are written to the tenant as posted events (dates over six fiscal
//! years, the hot accounts in every entry), the general ledger is rebuilt by a full replay, and
//! the trial balance of a year and account-ledger pages at random points of the cash account's
//! history are requested through the API's router in process (auth, row-level security, SQL,
//! JSON; no socket), each many times: p50 and p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Days, NaiveDate};
use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tower::ServiceExt;
use tracing::instrument::WithSubscriber;
use uuid::Uuid;
use vextrus::database;
use vextrus_api::{ApiSettings, AppState, Background, Claims, JwtKeys, RateLimits};
use vextrus_commands::{
    ActorId, CommandMetadata, DbRole, EventStore, LogReader, PostingState, Version,
};
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    AccountType, EntryKind, EntryLine, FiscalYear, JournalCommand, Ledger, LedgerCommand, Money,
    NewAccount, NewEntry, RootType,
};
use vextrus_domain::ids::{AccountId, DivisionId, EntryId, OrganizationId, ProjectId};
use vextrus_domain::organization::{NewOrganization, Organization, OrganizationCommand};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};
use vextrus_projections::finance::GeneralLedger;

use super::bench::percentile_ms;

#[derive(Debug, Args)]
pub struct LedgerBenchArgs {
    /// Measured seconds per cell, split over the rounds.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// The systems take turns this many times per client count.
    #[arg(long, default_value_t = 4)]
    rounds: u32,
    /// Concurrent client counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    clients: Vec<usize>,
    /// Posted lines in the tenant for the report queries.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Requests per report query kind.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Keep the bench's database afterwards (with `DATABASE_URL`), to look at its plans.
    #[arg(long)]
    keep: bool,
}

/// Accounts besides the hot ones.
const OTHER_ACCOUNTS: usize = 1_000;
/// The fiscal years the million lines are spread over (from 1 July 2020).
const YEARS: u64 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Vextrus,
    Raw,
    BalanceRows,
    BalanceRowsOne,
}

impl System {
    const ALL: [Self; 4] = [
        Self::Vextrus,
        Self::Raw,
        Self::BalanceRows,
        Self::BalanceRowsOne,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Vextrus => "vextrus",
            Self::Raw => "raw",
            Self::BalanceRows => "balance-rows",
            Self::BalanceRowsOne => "balance-rows-1",
        }
    }
}

/// The tenant's books: the organization, its project, the hot accounts and the others.
#[derive(Clone)]
pub(super) struct Books {
    tenant: TenantId,
    organization: OrganizationId,
    project: ProjectId,
    cash: AccountId,
    cost: AccountId,
    others: Arc<Vec<AccountId>>,
}

fn literal<T, E: std::fmt::Debug>(parsed: Result<T, E>) -> anyhow::Result<T> {
    parsed.map_err(|error| anyhow::anyhow!("a fixed sample value: {error:?}"))
}

fn account(
    code: String,
    name: String,
    parent: Option<AccountId>,
    root: Option<RootType>,
    group: bool,
    account_type: AccountType,
) -> anyhow::Result<NewAccount> {
    Ok(NewAccount {
        account_id: AccountId::new(),
        code: literal(Code::parse(&code))?,
        name: literal(Name::parse(&name))?,
        parent_id: parent,
        root_type: root,
        account_type,
        is_group: group,
        currency: CurrencyCode::bdt(),
    })
}

/// The organization, a project, a chart of 1,002 ledger accounts and six fiscal years, written
/// through the store like any commands.
pub(super) async fn open_books(store: &EventStore) -> anyhow::Result<Books> {
    let tenant = TenantId::new();
    let organization = OrganizationId::new();
    let (division, project) = (DivisionId::new(), ProjectId::new());
    let metadata = CommandMetadata::new(literal(ActorId::parse("bench-user"))?);
    let id = organization.to_string();
    for command in [
        OrganizationCommand::CreateOrganization(NewOrganization {
            organization_id: organization,
            name: literal(Name::parse("Bench Builders Ltd"))?,
            code: literal(Code::parse("BENCH"))?,
            bin: literal(Bin::parse("002871821-0101"))?,
            tin: literal(Tin::parse("123456789012"))?,
            base_currency: CurrencyCode::bdt(),
            fiscal_year_start: FiscalYearStart::default(),
        }),
        OrganizationCommand::CreateDivision {
            division_id: division,
            name: literal(Name::parse("Dhaka"))?,
            code: literal(Code::parse("DHK"))?,
        },
        OrganizationCommand::CreateProject {
            division_id: division,
            project_id: project,
            name: literal(Name::parse("Padma"))?,
            code: literal(Code::parse("PADMA"))?,
        },
    ] {
        store
            .execute::<Organization>(tenant, &id, command, &(), &metadata, None)
            .await?;
    }
    let assets = account(
        "1000".into(),
        "Assets".into(),
        None,
        Some(RootType::Asset),
        true,
        AccountType::General,
    )?;
    let costs = account(
        "5000".into(),
        "Expenses".into(),
        None,
        Some(RootType::Expense),
        true,
        AccountType::General,
    )?;
    let cash = account(
        "1110".into(),
        "Cash".into(),
        Some(assets.account_id),
        None,
        false,
        AccountType::Cash,
    )?;
    let cost = account(
        "5120".into(),
        "Subcontractor Costs".into(),
        Some(costs.account_id),
        None,
        false,
        AccountType::General,
    )?;
    let mut chart = vec![assets.clone(), costs.clone(), cash.clone(), cost.clone()];
    for n in 0..OTHER_ACCOUNTS {
        chart.push(account(
            format!("6{n:04}"),
            format!("Cost code {n}"),
            Some(costs.account_id),
            None,
            false,
            AccountType::General,
        )?);
    }
    let others = chart[4..].iter().map(|a| a.account_id).collect();
    let ledger_command = async |command: LedgerCommand| {
        store
            .execute::<Ledger>(tenant, &id, command, &(), &metadata, None)
            .await
            .map(|_| ())
    };
    ledger_command(LedgerCommand::InstallStandardChart(chart)).await?;
    for year in 0..=YEARS {
        let start = first_day()
            .checked_add_months(chrono::Months::new(12 * year as u32))
            .context("a date")?;
        let end = FiscalYear::full_year_end(start).context("a date")?;
        ledger_command(LedgerCommand::OpenFiscalYear {
            start,
            end,
            short: false,
            fiscal_year_start: FiscalYearStart::default(),
        })
        .await?;
    }
    Ok(Books {
        tenant,
        organization,
        project,
        cash: cash.account_id,
        cost: cost.account_id,
        others: Arc::new(others),
    })
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 7, 1).unwrap_or_default()
}

/// The three lines of entry `n`: cost (hot, with the project) and one of the others on the
/// debit side, cash (hot) on the credit side.
fn lines(books: &Books, n: u64) -> Vec<EntryLine> {
    let (hot, other) = (
        Money::from_paisa(100_000 + (n % 997) as i64),
        Money::from_paisa(25_000),
    );
    let line = |account_id, debit, credit| EntryLine {
        account_id,
        debit,
        credit,
        party: None,
        project_id: Some(books.project),
        site_id: None,
        memo: None,
    };
    vec![
        line(books.cost, hot, Money::ZERO),
        line(
            books.others[(n as usize) % books.others.len()],
            other,
            Money::ZERO,
        ),
        EntryLine {
            project_id: None,
            ..line(books.cash, Money::ZERO, hot + other)
        },
    ]
}

/// Writes `entries` posted three-line entries ([`lines`]' accounts) into the log as
/// `JournalEntryPosted` events, as the owner and 5,000 per statement, dated over [`YEARS`]
/// fiscal years from 1 July 2020 as a log would hold them. Generated in SQL: a million lines
/// through the posting path would measure that path instead.
pub(super) async fn write_postings(
    owner: &PgPool,
    books: &Books,
    entries: u64,
) -> anyhow::Result<()> {
    let batch = 5_000_u64;
    let mut done = 0;
    while done < entries {
        let count = batch.min(entries - done);
        sqlx::query(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                                 actor, command_id, correlation_id)
             select $1, 'journal_entry', e.id::text, 1, 'JournalEntryPosted', '1',
                    jsonb_build_object('entry_id', e.id, 'organization_id', $2::uuid, 'kind', 'regular',
                        'date', e.day, 'fiscal_year', (date_trunc('year', e.day - interval '6 months') + interval '6 months')::date,
                        'currency', 'BDT', 'narration', 'Generated posting',
                        'lines', jsonb_build_array(
                            jsonb_build_object('account_id', $5::uuid, 'debit', 100000 + e.n % 997, 'credit', 0, 'project_id', $6::uuid),
                            jsonb_build_object('account_id', ($7::uuid[])[1 + e.n % array_length($7::uuid[], 1)], 'debit', 25000, 'credit', 0, 'project_id', $6::uuid),
                            jsonb_build_object('account_id', $8::uuid, 'debit', 0, 'credit', 125000 + e.n % 997))),
                    'bench-user', e.id, e.id
             from (select n, gen_random_uuid() as id, $3::date + (n % ($4::bigint * 365))::int as day
                   from generate_series($9::bigint, $10::bigint) as n) as e",
        )
        .bind(books.tenant.as_uuid())
        .bind(books.organization.as_uuid())
        .bind(first_day())
        .bind(YEARS as i64)
        .bind(books.cost.as_uuid())
        .bind(books.project.as_uuid())
        .bind(books.others.iter().map(|a| a.as_uuid()).collect::<Vec<_>>())
        .bind(books.cash.as_uuid())
        .bind(done as i64)
        .bind((done + count) as i64 - 1)
        .execute(owner)
        .await?;
        done += count;
    }
    Ok(())
}

const CLASSIC_SCHEMA: &str = "
create table gl_entries (id uuid primary key, tenant_id uuid not null, posting_date date not null,
                         narration text not null);
create table gl_lines (entry_id uuid not null, line_no int not null, account_id uuid not null,
                       debit bigint not null, credit bigint not null, primary key (entry_id, line_no));
create index gl_lines_account_idx on gl_lines (account_id, entry_id);
create table gl_balances (tenant_id uuid not null, account_id uuid not null, debit bigint not null,
                          credit bigint not null, primary key (tenant_id, account_id));
create table raw_events (like events including all);
alter table raw_events alter column hash drop not null;";

/// One client's way of posting entry `n`.
async fn post(
    system: System,
    books: &Books,
    store: &EventStore,
    postings: &PostingState,
    connection: &mut PgConnection,
    n: u64,
) -> anyhow::Result<()> {
    let lines = lines(books, n);
    let date = first_day() + Days::new(YEARS * 365 + n % 200);
    match system {
        System::Vextrus => {
            let entry_id = EntryId::new();
            let metadata = CommandMetadata::new(literal(ActorId::parse("bench-user"))?);
            let entry = NewEntry {
                entry_id,
                organization_id: books.organization,
                kind: EntryKind::Regular,
                date,
                narration: "Bench posting".to_owned(),
                reference: None,
                document_number: None,
                lines,
                round_off: false,
            };
            store
                .execute_journal(
                    postings,
                    books.tenant,
                    books.organization,
                    entry_id,
                    JournalCommand::Post(entry),
                    &metadata,
                    Some(Version::NONE),
                )
                .await?;
        }
        System::Raw => {
            let entry_id = Uuid::now_v7();
            let payload = serde_json::json!({
                "entry_id": entry_id, "organization_id": books.organization, "kind": "regular",
                "date": date, "currency": "BDT", "narration": "Bench posting", "lines": lines,
            });
            sqlx::query(
                "insert into raw_events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                         payload, actor, command_id, correlation_id)
                 values ($1, 'journal_entry', $2, 1, 'JournalEntryPosted', '1', $3, 'bench-user', $4, $4)",
            )
            .bind(books.tenant.as_uuid())
            .bind(entry_id.to_string())
            .bind(payload)
            .bind(Uuid::now_v7())
            .execute(&mut *connection)
            .await?;
        }
        System::BalanceRows | System::BalanceRowsOne => {
            let entry_id = Uuid::now_v7();
            // Balances are updated in account order, so two postings never deadlock.
            let mut sorted: Vec<&EntryLine> = lines.iter().collect();
            sorted.sort_by_key(|line| line.account_id);
            let accounts: Vec<Uuid> = sorted.iter().map(|l| l.account_id.as_uuid()).collect();
            let debits: Vec<i64> = sorted.iter().map(|l| l.debit.paisa()).collect();
            let credits: Vec<i64> = sorted.iter().map(|l| l.credit.paisa()).collect();
            let line_numbers: Vec<i32> = (0..3).collect();
            if system == System::BalanceRowsOne {
                // The balance rows are locked first, in account order (a materialized CTE the
                // update joins), so concurrent postings queue on the hot rows but never deadlock;
                // a deadlock all the same is sent again.
                loop {
                    let result = sqlx::query(
                    "with locked as materialized (
                         select account_id from gl_balances where tenant_id = $2 and account_id = any($5::uuid[])
                         order by account_id for update),
                     entry as (
                         insert into gl_entries (id, tenant_id, posting_date, narration)
                         values ($1, $2, $3, 'Bench posting')),
                     posted as (
                         insert into gl_lines (entry_id, line_no, account_id, debit, credit)
                         select $1, l.n, l.a, l.d, l.c from unnest($4::int[], $5::uuid[], $6::bigint[], $7::bigint[]) as l(n, a, d, c))
                     update gl_balances b set debit = b.debit + x.d, credit = b.credit + x.c
                     from unnest($5::uuid[], $6::bigint[], $7::bigint[]) as x(a, d, c),
                          (select count(*) as n from locked) as l
                     where b.tenant_id = $2 and b.account_id = x.a and l.n > 0",
                )
                .bind(entry_id)
                .bind(books.tenant.as_uuid())
                .bind(date)
                .bind(&line_numbers)
                .bind(&accounts)
                .bind(&debits)
                .bind(&credits)
                .execute(&mut *connection)
                .await;
                    match result {
                        Err(sqlx::Error::Database(error))
                            if error.code().as_deref() == Some("40P01") =>
                        {
                            continue;
                        }
                        other => {
                            other?;
                            break;
                        }
                    }
                }
            } else {
                let mut tx = connection.begin().await?;
                sqlx::query("insert into gl_entries (id, tenant_id, posting_date, narration) values ($1, $2, $3, 'Bench posting')")
                    .bind(entry_id)
                    .bind(books.tenant.as_uuid())
                    .bind(date)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "insert into gl_lines (entry_id, line_no, account_id, debit, credit)
                     select $1, l.n, l.a, l.d, l.c from unnest($2::int[], $3::uuid[], $4::bigint[], $5::bigint[]) as l(n, a, d, c)",
                )
                .bind(entry_id)
                .bind(&line_numbers)
                .bind(&accounts)
                .bind(&debits)
                .bind(&credits)
                .execute(&mut *tx)
                .await?;
                for ((account, debit), credit) in accounts.iter().zip(&debits).zip(&credits) {
                    sqlx::query("update gl_balances set debit = debit + $3, credit = credit + $4 where tenant_id = $1 and account_id = $2")
                        .bind(books.tenant.as_uuid())
                        .bind(account)
                        .bind(debit)
                        .bind(credit)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
    }
    Ok(())
}

/// Rows that show what `system` wrote: events, raw events, or classic entries.
async fn rows(system: System, owner: &PgPool) -> anyhow::Result<i64> {
    let sql = match system {
        System::Vextrus => "select count(*) from events where aggregate_type = 'journal_entry'",
        System::Raw => "select count(*) from raw_events",
        System::BalanceRows | System::BalanceRowsOne => "select count(*) from gl_entries",
    };
    Ok(sqlx::query_scalar(sql).fetch_one(owner).await?)
}

struct Cell {
    latencies: Vec<Duration>,
    measured: Duration,
}

impl Cell {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.measured.as_secs_f64().max(f64::EPSILON)
    }
}

pub async fn ledger(
    args: LedgerBenchArgs,
    external: Option<PgConnectOptions>,
) -> anyhow::Result<()> {
    let (admin, cluster) = super::bench::bench_server(external).await?;
    let db = format!(
        "vextrus_bench_ledger_{}",
        &Uuid::now_v7().simple().to_string()[..12]
    );
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("create database {db}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let options = admin.clone().database(&db);
    let result = run(&args, &options).await;
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    } else if args.keep {
        println!("kept database {db}");
    } else {
        let mut conn = PgConnection::connect_with(&admin).await?;
        sqlx::query(&format!("drop database {db} with (force)"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    result
}

async fn run(args: &LedgerBenchArgs, options: &PgConnectOptions) -> anyhow::Result<()> {
    database::migrate(options).await?;
    let owner = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await?;
    sqlx::raw_sql(CLASSIC_SCHEMA).execute(&owner).await?;
    let max_clients = u32::try_from(args.clients.iter().copied().max().unwrap_or(1)).unwrap_or(64);
    let writer = database::role_pool(options, DbRole::Writer, max_clients).await?;
    let plain = PgPoolOptions::new()
        .max_connections(max_clients)
        .connect_with(options.clone())
        .await?;
    let store = EventStore::new(writer.clone());
    let books = open_books(&store).await?;
    // The classic ledger's balance rows, one per account.
    let mut accounts = vec![books.cash, books.cost];
    accounts.extend(books.others.iter().copied());
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.as_uuid()).collect();
    sqlx::query("insert into gl_balances select $1, a, 0, 0 from unnest($2::uuid[]) as a")
        .bind(books.tenant.as_uuid())
        .bind(&ids)
        .execute(&owner)
        .await?;
    let postings = Arc::new(PostingState::default());
    // Warm up: the first posting to each account also records it on the ledger.
    {
        let mut warm_up = plain.acquire().await?;
        for n in 0..OTHER_ACCOUNTS as u64 {
            post(System::Vextrus, &books, &store, &postings, &mut warm_up, n).await?;
        }
    }
    println!(
        "ledger benchmark: 3-line entries (cash and a cost account in every one, plus one of {OTHER_ACCOUNTS}), {:.1} s per cell in {} rounds, {} core(s)",
        args.seconds,
        args.rounds.max(1),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "{:>7}  {:<15} {:>10} {:>9} {:>9}",
        "clients", "system", "entries/s", "p50 ms", "p99 ms"
    );
    let per_round = Duration::from_secs_f64(args.seconds.max(0.1) / f64::from(args.rounds.max(1)));
    let mut at_16 = [0.0_f64; 4];
    let mut counter = 1_000_000_u64;
    for &clients in &args.clients {
        let mut cells: Vec<Cell> = System::ALL
            .iter()
            .map(|_| Cell {
                latencies: Vec::new(),
                measured: Duration::ZERO,
            })
            .collect();
        for _ in 0..args.rounds.max(1) {
            for (system, cell) in System::ALL.into_iter().zip(cells.iter_mut()) {
                let before = rows(system, &owner).await?;
                let start = Instant::now();
                let (warm, until) = (
                    start + Duration::from_millis(200),
                    start + Duration::from_millis(200) + per_round,
                );
                let mut tasks = Vec::new();
                for client in 0..clients {
                    let (books, store, postings, pool) = (
                        books.clone(),
                        store.clone(),
                        postings.clone(),
                        plain.clone(),
                    );
                    let base = counter + (client as u64) * 10_000_000;
                    tasks.push(tokio::spawn(async move {
                        // Each client its own connection for the cell, as a server's request
                        // handler would hold one: no pool round trip per entry.
                        let mut connection = pool.acquire().await?;
                        let (mut latencies, mut posted) = (Vec::new(), 0_i64);
                        loop {
                            let began = Instant::now();
                            if began >= until {
                                return Ok::<_, anyhow::Error>((latencies, posted));
                            }
                            post(
                                system,
                                &books,
                                &store,
                                &postings,
                                &mut connection,
                                base + posted as u64,
                            )
                            .await?;
                            posted += 1;
                            if began >= warm {
                                latencies.push(began.elapsed());
                            }
                        }
                    }));
                }
                let mut posted = 0;
                for task in tasks {
                    let (latencies, count) = task.await??;
                    cell.latencies.extend(latencies);
                    posted += count;
                }
                counter += 1_000_000_000;
                cell.measured += per_round;
                let written = rows(system, &owner).await? - before;
                if written != posted {
                    bail!(
                        "{} reported {posted} entries but wrote {written}",
                        system.name()
                    );
                }
            }
        }
        for (system, mut cell) in System::ALL.into_iter().zip(cells) {
            let per_second = cell.per_second();
            println!(
                "{clients:>7}  {:<15} {:>10.0} {:>9.2} {:>9.2}",
                system.name(),
                per_second,
                percentile_ms(&mut cell.latencies, 0.50),
                percentile_ms(&mut cell.latencies, 0.99)
            );
            if clients == 16 {
                at_16[system as usize] = per_second;
            }
        }
    }
    // The classic ledger's balances must equal its lines: the honesty check of its cells.
    let mismatched: i64 = sqlx::query_scalar(
        "select count(*) from gl_balances b
         where (b.debit, b.credit) <> (select coalesce(sum(debit), 0), coalesce(sum(credit), 0)
                                       from gl_lines l where l.account_id = b.account_id)",
    )
    .fetch_one(&owner)
    .await?;
    if mismatched != 0 {
        bail!("{mismatched} balance rows differ from their lines");
    }

    let (tb, page) = reports(args, options, &owner, &books).await?;
    let [vextrus, raw, rows1, rows_one] = at_16;
    if vextrus > 0.0 && raw > 0.0 && rows1 > 0.0 && rows_one > 0.0 {
        println!(
            "ledger ratio: vextrus/raw={:.2} vextrus/balance-rows={:.2} vextrus/balance-rows-1={:.2} (16 clients); trial balance p99={tb:.1}ms ledger page p99={page:.1}ms at {} lines",
            vextrus / raw,
            vextrus / rows1,
            vextrus / rows_one,
            args.lines
        );
    } else {
        println!(
            "ledger ratio: not measured (16 clients were not in --clients); trial balance p99={tb:.1}ms ledger page p99={page:.1}ms at {} lines",
            args.lines
        );
    }
    Ok(())
}

/// Writes `args.lines` posted lines as events, rebuilds the general ledger by a full replay and
/// times the report queries. Returns the trial balance's and the ledger page's p99, in ms.
async fn reports(
    args: &LedgerBenchArgs,
    options: &PgConnectOptions,
    owner: &PgPool,
    books: &Books,
) -> anyhow::Result<(f64, f64)> {
    let entries = args.lines / 3;
    let started = Instant::now();
    write_postings(owner, books, entries).await?;
    println!(
        "reports: {} entries ({} lines) written to the log in {:.1} s",
        entries,
        entries * 3,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let summary = vextrus_replay::Replay::new(
        GeneralLedger,
        owner.clone(),
        LogReader::new(database::log_reader_pool(options, 2).await?),
        vextrus_replay::ReplayOptions::default(),
    )
    .run(|_| {})
    .await?;
    println!(
        "reports: the general ledger rebuilt by a full replay of {} events in {:.1} s (written frozen and analyzed before the swap)",
        summary.events,
        started.elapsed().as_secs_f64()
    );
    let lines_in_model: i64 = sqlx::query_scalar("select count(*) from fin_entry_lines")
        .fetch_one(owner)
        .await?;
    if (lines_in_model as u64) < entries * 3 {
        bail!(
            "the read model holds {lines_in_model} lines, fewer than the {} written",
            entries * 3
        );
    }

    // The API in process, reading as `vextrus_reader` under row-level security.
    let reader = database::role_pool(options, DbRole::Reader, 4).await?;
    let keys = JwtKeys::from_secret(&[7; 32]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = AppState::new(
        EventStore::new(reader.clone()),
        reader.clone(),
        owner.clone(),
        keys.clone(),
        Background::default(),
        // The report queries are the measurement; no rate limit may shape them.
        ApiSettings {
            rate_limits: RateLimits::off(),
            ..ApiSettings::default()
        },
    );
    let router = vextrus_api::router(state);
    let now = chrono::Utc::now().timestamp();
    let token = keys
        .sign(&Claims {
            sub: "bench-user".into(),
            tenant: books.tenant.as_uuid(),
            roles: vec!["viewer".into()],
            exp: now + 3600,
            iat: Some(now),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let org = books.organization;
    let get = |path: String| {
        let (router, token) = (router.clone(), token.clone());
        async move {
            let request = Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())?;
            let began = Instant::now();
            // Without the request log lines a serving process writes: a few hundred requests.
            let response = router
                .oneshot(request)
                .with_subscriber(tracing::subscriber::NoSubscriber::default())
                .await?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            let took = began.elapsed();
            if status != StatusCode::OK {
                bail!("{status}: {}", String::from_utf8_lossy(&body));
            }
            Ok::<_, anyhow::Error>((took, body))
        }
    };
    let mut tb = Vec::with_capacity(args.queries);
    for n in 0..args.queries {
        let year = 2020 + (n as u64 % YEARS);
        let (took, body) = get(format!(
            "/v1/organizations/{org}/trial-balance?from={year}-07-01&to={}-06-30",
            year + 1
        ))
        .await?;
        if n == 0 && !String::from_utf8_lossy(&body).contains("\"balanced\":true") {
            bail!("the trial balance does not balance");
        }
        tb.push(took);
    }
    // Cursors anywhere in the cash account's history.
    let keys: Vec<(NaiveDate, i64, i32)> = sqlx::query_as(
        "select date, position, line_no from fin_entry_lines where account_id = $1 order by random() limit $2",
    )
    .bind(books.cash.as_uuid())
    .bind(args.queries as i64)
    .fetch_all(owner)
    .await?;
    let mut pages = Vec::with_capacity(keys.len());
    for (date, position, line) in keys {
        let days = (date - FiscalYear::EARLIEST).num_days();
        let (took, _) = get(format!(
            "/v1/organizations/{org}/accounts/{}/ledger?limit=100&after={days}~{position}~{line}",
            books.cash
        ))
        .await?;
        pages.push(took);
    }
    println!("{:<28} {:>9} {:>9}", "report query", "p50 ms", "p99 ms");
    let tb_p99 = percentile_ms(&mut tb, 0.99);
    let page_p99 = percentile_ms(&mut pages, 0.99);
    println!(
        "{:<28} {:>9.2} {:>9.2}",
        "trial balance (a year)",
        percentile_ms(&mut tb, 0.50),
        tb_p99
    );
    println!(
        "{:<28} {:>9.2} {:>9.2}",
        "cash ledger page (100)",
        percentile_ms(&mut pages, 0.50),
        page_p99
    );
    Ok((tb_p99, page_p99))
}
