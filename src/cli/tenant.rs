//! `vextrus tenant`: the platform operator registers, suspends and resumes tenants.

use anyhow::Context;
use clap::{Args, Subcommand};
use vextrus::database;
use vextrus::tenants;
use vextrus_commands::{DbRole, EventStore};
use vextrus_domain::identity::{Email, Role};
use vextrus_domain::values::Name;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use super::{DatabaseArgs, stop};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant and print a one-time invitation for its first administrator.
    Create(CreateArgs),
    /// Invite one more person to a tenant with a role (e.g. when an invitation was lost).
    Invite(InviteArgs),
    /// Suspend a tenant: its tokens and keys are refused at once, sign-in too.
    Suspend(StatusArgs),
    /// Resume a suspended tenant.
    Resume(StatusArgs),
    /// The registered tenants.
    List,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The tenant's name, e.g. "Meghna Builders Ltd".
    #[arg(long)]
    name: String,
    /// Its unique slug, typed at sign-in (default: made from the name).
    #[arg(long)]
    slug: Option<String>,
    /// The first administrator's e-mail address.
    #[arg(long)]
    admin_email: String,
    /// The first administrator's name (default: the address).
    #[arg(long)]
    admin_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The tenant's slug or id.
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    email: String,
    /// The person's name (default: the address).
    #[arg(long)]
    name: Option<String>,
    /// The role in the whole tenant.
    #[arg(long, default_value = "admin")]
    role: Role,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The tenant's slug or id.
    #[arg(long)]
    tenant: String,
    /// Why, for the audit trail.
    #[arg(long)]
    reason: String,
}

fn print_invitation(invitation: &tenants::Invitation) {
    println!("user:        {}", invitation.user.as_uuid());
    println!("email:       {}", invitation.email);
    println!("invitation:  {}", invitation.token);
    println!("expires at:  {}", invitation.expires_at.to_rfc3339());
    println!(
        "Shown once. The person accepts it with a password:\n  \
         curl -X POST <api>/v1/auth/invitation/accept -H 'content-type: application/json' \\\n    \
         -d '{{\"invitation\": \"{}\", \"password\": \"<12 or more characters>\"}}'",
        invitation.token
    );
}

impl TenantCommand {
    pub async fn run(self, database: &DatabaseArgs) -> anyhow::Result<()> {
        let (options, cluster) = database.open_for_operator().await?;
        let result = self.run_on(&options).await;
        stop(cluster).await;
        result
    }

    async fn run_on(self, options: &PgConnectOptions) -> anyhow::Result<()> {
        if let Self::List = self {
            let owner = PgPool::connect_with(options.clone())
                .await
                .context("connecting to the database")?;
            let rows = tenants::list(&owner).await.context("listing the tenants");
            owner.close().await;
            println!(
                "{:<36}  {:<24}  {:<9}  {:<25}  name",
                "tenant", "slug", "status", "registered"
            );
            for row in rows? {
                println!(
                    "{:<36}  {:<24}  {:<9}  {:<25}  {}",
                    row.tenant_id,
                    row.slug,
                    row.status,
                    row.registered_at.to_rfc3339(),
                    row.name
                );
            }
            return Ok(());
        }
        let writer = database::role_pool(options, DbRole::Writer, 2)
            .await
            .context("connecting to the database")?;
        let store = EventStore::new(writer.clone());
        let result = self.execute(&store).await;
        writer.close().await;
        result
    }

    async fn execute(self, store: &EventStore) -> anyhow::Result<()> {
        match self {
            Self::Create(args) => {
                let slug = args
                    .slug
                    .clone()
                    .unwrap_or_else(|| tenants::slug_from_name(&args.name));
                let admin_name = args.admin_name.as_deref().unwrap_or(&args.admin_email);
                let registered =
                    tenants::register(store, &args.name, &slug, &args.admin_email, admin_name)
                        .await?;
                println!("tenant:      {}", registered.tenant.as_uuid());
                println!("slug:        {}", registered.slug);
                print_invitation(&registered.invitation);
            }
            Self::Invite(args) => {
                let tenant = tenants::find(store, &args.tenant).await?;
                let email = Email::parse(&args.email).context("--email")?;
                let name =
                    Name::parse(args.name.as_deref().unwrap_or(&args.email)).context("--name")?;
                let invitation = tenants::invite(store, tenant, email, name, args.role).await?;
                print_invitation(&invitation);
            }
            Self::Suspend(ref args) | Self::Resume(ref args) => {
                let suspend = matches!(self, Self::Suspend(_));
                let tenant = tenants::find(store, &args.tenant).await?;
                tenants::set_suspended(store, tenant, suspend, &args.reason).await?;
                println!(
                    "tenant {} {}",
                    tenant.as_uuid(),
                    if suspend { "suspended" } else { "resumed" }
                );
            }
            Self::List => {}
        }
        Ok(())
    }
}
