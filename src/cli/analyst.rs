//! `vextrus analyst`: PostgreSQL login roles for analysts, each bound to one tenant.

use clap::{Args, Subcommand};
use uuid::Uuid;
use vextrus::analyst;

use super::audit::owner_pool;
use super::{DatabaseArgs, stop};

#[derive(Debug, Subcommand)]
pub enum AnalystCommand {
    /// Create a login role that reads exactly one tenant's read models; prints its password once.
    Create(CreateArgs),
    /// Drop an analyst role (its open sessions are ended).
    Revoke {
        /// The role's name.
        #[arg(long)]
        name: String,
    },
    /// List the analyst roles and their tenants.
    List,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The tenant the role reads.
    #[arg(long)]
    tenant: Uuid,
    /// The role's name: 3-48 lowercase letters, digits or underscores, starting with a letter.
    #[arg(long)]
    name: String,
    /// Also let the role read its tenant's events (the audit trail).
    #[arg(long)]
    with_events: bool,
}

impl AnalystCommand {
    pub async fn run(self, database: &DatabaseArgs) -> anyhow::Result<()> {
        let (owner, cluster) = owner_pool(database).await?;
        let result = match self {
            Self::Create(args) => {
                match analyst::create(&owner, args.tenant, &args.name, args.with_events).await {
                    Ok(created) => {
                        println!("role:     {}", created.role);
                        println!("password: {}", created.password);
                        println!("tenant:   {}", args.tenant);
                        println!(
                            "The password is shown once. Connect with it as this role (psql -U {} …); \
                             the role reads this tenant's read models{} and nothing else.",
                            created.role,
                            if args.with_events { " and events" } else { "" }
                        );
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Self::Revoke { name } => analyst::revoke(&owner, &name)
                .await
                .map(|()| println!("role {name} dropped"))
                .map_err(Into::into),
            Self::List => match analyst::list(&owner).await {
                Ok(roles) => {
                    println!("{:<24} {:<38} created", "role", "tenant");
                    for role in roles {
                        println!(
                            "{:<24} {:<38} {}",
                            role.role_name,
                            role.tenant_id,
                            role.created_at.format("%Y-%m-%d %H:%M")
                        );
                    }
                    Ok(())
                }
                Err(error) => Err(error.into()),
            },
        };
        owner.close().await;
        stop(cluster).await;
        result
    }
}
