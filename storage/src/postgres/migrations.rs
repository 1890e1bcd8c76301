//! The schema's migrations, embedded in the binary and run by sqlx's
//! migrator, which records each in `_sqlx_migrations` with its checksum.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use crate::sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// Every migration, oldest first: (version, description, SQL).
const MIGRATIONS: [(i64, &str, &str); 4] = [
    (1, "jobs", include_str!("migrations/0001_jobs.sql")),
    (2, "duties", include_str!("migrations/0002_duties.sql")),
    (3, "queues", include_str!("migrations/0003_queues.sql")),
    (4, "cancel_reason", include_str!("migrations/0004_cancel_reason.sql")),
];

/// The embedded migrations, as a source for sqlx's migrator.
#[derive(Debug)]
struct Embedded;

type Resolved = Result<Vec<Migration>, Box<dyn std::error::Error + Send + Sync>>;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Resolved> + Send>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The migrator for this build's schema.
pub(super) async fn migrator() -> Result<Migrator, crate::sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}
