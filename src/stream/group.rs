//! Consumer groups: creation, and recognising a group Redis lost.

use redis::aio::ConnectionLike;

/// `XGROUP CREATE … 0 MKSTREAM`; an existing group (BUSYGROUP) is fine.
pub async fn create_group(conn: &mut impl ConnectionLike, stream_key: &str, group: &str) -> anyhow::Result<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream_key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("create consumer group {group} on {stream_key}"))),
    }
}

/// Whether `err` says the stream or group does not exist (Redis restarted without its data,
/// or an operator deleted it): the consumer recreates the group.
pub fn is_missing_group(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<redis::RedisError>())
        .any(|e| e.code() == Some("NOGROUP"))
}
