//! What finance commands read from the log itself (never from a lagging read model).

use chrono::NaiveDate;
use sqlx::Row;
use uuid::Uuid;
use vextrus_domain::TenantId;
use vextrus_domain::finance::{EntryLine, JournalEntry, Money};
use vextrus_domain::ids::{AccountId, OrganizationId, ProjectId, SiteId};

use crate::store::EventStore;
use crate::tenant;

impl EventStore {
    /// The net (debit minus credit) of every posted and reversal line of `organization` dated
    /// `from..=to` on one of `accounts`, per account, project and site, from the log. Year-end
    /// closing reads the year's profit-and-loss balances this way once every period of the year
    /// is closed, so that no posting can still land in it.
    pub async fn journal_totals(
        &self,
        tenant: TenantId,
        organization: OrganizationId,
        from: NaiveDate,
        to: NaiveDate,
        accounts: &[AccountId],
    ) -> Result<Vec<EntryLine>, sqlx::Error> {
        use cqrs_es::Aggregate;
        let accounts: Vec<String> = accounts.iter().map(ToString::to_string).collect();
        let mut tx = tenant::begin(self.pool(), tenant).await?;
        let rows = sqlx::query(
            "select l->>'account_id' as account_id, l->>'project_id' as project_id,
                    l->>'site_id' as site_id,
                    sum((l->>'debit')::bigint - (l->>'credit')::bigint)::bigint as net
             from events e cross join lateral jsonb_array_elements(e.payload->'lines') as l
             where e.tenant_id = $1 and e.aggregate_type = $2
               and e.payload->>'organization_id' = $3
               and (e.payload->>'date')::date between $4 and $5
               and l->>'account_id' = any($6)
             group by 1, 2, 3
             order by 1, 2, 3",
        )
        .bind(tenant.as_uuid())
        .bind(JournalEntry::TYPE)
        .bind(organization.to_string())
        .bind(from)
        .bind(to)
        .bind(&accounts)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let id = |text: Option<String>| text.and_then(|text| text.parse::<Uuid>().ok());
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(account_id) = id(row.try_get("account_id")?) else {
                continue;
            };
            let net = Money::from_paisa(row.try_get::<Option<i64>, _>("net")?.unwrap_or(0));
            lines.push(EntryLine {
                account_id: AccountId::from_uuid(account_id),
                debit: if net.is_positive() { net } else { Money::ZERO },
                credit: if net.is_positive() { Money::ZERO } else { -net },
                party: None,
                project_id: id(row.try_get("project_id")?).map(ProjectId::from_uuid),
                site_id: id(row.try_get("site_id")?).map(SiteId::from_uuid),
                memo: None,
            });
        }
        Ok(lines)
    }
}
