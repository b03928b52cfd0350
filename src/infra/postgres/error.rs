//! What a database error means, so that `app` never looks inside a `sqlx::Error`.

/// Whether `err` says the database could not be reached (pool exhausted or closed, I/O):
/// the operation was not done and may be retried.
pub fn database_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    })
}

/// The name of the database constraint `err` violated, if that is what happened. Constraints
/// are named in `migrations/` so code can refer to them.
pub fn violated_constraint(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|cause| match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db.constraint(),
        _ => None,
    })
}
