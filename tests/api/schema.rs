//! The migrations, and the database-level guards they install.

use sqlx::{Executor, PgPool};
use uuid::Uuid;

use crate::servers;

/// A fresh database migrated as the services migrate it (through PgBouncer when the tests
/// go through it), and a pool straight at it for the test's own statements.
async fn migrated_pool() -> PgPool {
    let url = servers::fresh_database().await;
    imticket::infra::postgres::migrate(&servers::app_db(&url))
        .await
        .unwrap();
    servers::direct_pool(&url).await
}

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_are_idempotent() {
    let url = servers::fresh_database().await;
    let db = servers::app_db(&url);
    imticket::infra::postgres::migrate(&db).await.unwrap();
    imticket::infra::postgres::migrate(&db).await.unwrap();
    let pool = servers::direct_pool(&url).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    for table in [
        "concerts",
        "idempotency_keys",
        "jobs",
        "outbox",
        "payments",
        "point_transactions",
        "processed_events",
        "reservation_seats",
        "reservations",
        "schedules",
        "seats",
        "users",
        "wallets",
    ] {
        assert!(tables.iter().any(|t| t == table), "table {table} missing: {tables:?}");
    }
    let indexes: Vec<String> = sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'")
        .fetch_all(&pool)
        .await
        .unwrap();
    for index in [
        "reservations_status_expires_idx",
        "outbox_unpublished_idx",
        "reservation_seats_live_seat_key",
        "seats_position_key",
    ] {
        assert!(indexes.iter().any(|i| i == index), "index {index} missing");
    }
    // Every hold changes seats.status: indexing it puts an on-sale's updates on one hot page.
    assert!(!indexes.iter().any(|i| i == "seats_schedule_status_idx"));
}

struct Fixture {
    user: Uuid,
    schedule: Uuid,
    seat: Uuid,
}

async fn fixture(pool: &PgPool) -> Fixture {
    let (user, concert, schedule, seat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    pool.execute(
        sqlx::query("INSERT INTO users (id, email, password_hash, name) VALUES ($1, $2, 'x', 'U')")
            .bind(user)
            .bind(format!("{user}@example.com")),
    )
    .await
    .unwrap();
    pool.execute(sqlx::query("INSERT INTO wallets (user_id) VALUES ($1)").bind(user))
        .await
        .unwrap();
    pool.execute(sqlx::query("INSERT INTO concerts (id, title) VALUES ($1, 'C')").bind(concert))
        .await
        .unwrap();
    pool.execute(
        sqlx::query("INSERT INTO schedules (id, concert_id, starts_at) VALUES ($1, $2, now())")
            .bind(schedule)
            .bind(concert),
    )
    .await
    .unwrap();
    pool.execute(
        sqlx::query("INSERT INTO seats (id, schedule_id, section, row_number, seat_number, price) VALUES ($1, $2, 'A', 1, 1, 100)")
            .bind(seat)
            .bind(schedule),
    )
    .await
    .unwrap();
    Fixture { user, schedule, seat }
}

async fn hold(pool: &PgPool, f: &Fixture) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO reservations (id, user_id, schedule_id, amount, expires_at) VALUES ($1, $2, $3, 100, now() + interval '5 minutes')")
        .bind(id)
        .bind(f.user)
        .bind(f.schedule)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO reservation_seats (reservation_id, seat_id, reservation_status) VALUES ($1, $2, 'held')")
        .bind(id)
        .bind(f.seat)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

fn constraint(err: sqlx::Error) -> String {
    err.as_database_error()
        .and_then(|e| e.constraint())
        .unwrap_or_default()
        .to_owned()
}

/// I1 holds whatever the application code does: a seat can be in one live reservation only.
#[tokio::test]
async fn the_database_refuses_a_second_live_reservation_of_a_seat() {
    let pool = migrated_pool().await;
    let f = fixture(&pool).await;
    let first = hold(&pool, &f).await.unwrap();
    assert_eq!(
        constraint(hold(&pool, &f).await.unwrap_err()),
        "reservation_seats_live_seat_key"
    );

    // Paid and confirmed stay live: the copied status follows the reservation.
    sqlx::query("UPDATE reservations SET status = 'paid' WHERE id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    let copied: String =
        sqlx::query_scalar("SELECT reservation_status FROM reservation_seats WHERE reservation_id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(copied, "paid");
    assert_eq!(
        constraint(hold(&pool, &f).await.unwrap_err()),
        "reservation_seats_live_seat_key"
    );

    // The copy cannot be edited apart from its reservation.
    let err = sqlx::query("UPDATE reservation_seats SET reservation_status = 'expired' WHERE reservation_id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(constraint(err), "reservation_seats_reservation_fkey");

    // Once the first reservation is dead, the seat can be held again.
    sqlx::query("UPDATE reservations SET status = 'cancelled' WHERE id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    hold(&pool, &f).await.unwrap();
}

#[tokio::test]
async fn concurrent_holds_of_one_seat_leave_exactly_one_live_reservation() {
    let pool = migrated_pool().await;
    let f = std::sync::Arc::new(fixture(&pool).await);
    let attempts = (0..200).map(|_| {
        let (pool, f) = (pool.clone(), f.clone());
        tokio::spawn(async move { hold(&pool, &f).await.is_ok() })
    });
    let won = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM reservation_seats WHERE seat_id = $1 AND reservation_status IN ('held','paid','confirmed')")
        .bind(f.seat)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 1);
}

#[tokio::test]
async fn check_constraints_guard_balances_prices_and_seat_positions() {
    let pool = migrated_pool().await;
    let f = fixture(&pool).await;
    let err = sqlx::query("UPDATE wallets SET balance = -1 WHERE user_id = $1")
        .bind(f.user)
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(constraint(err), "wallets_balance_check");
    let err = sqlx::query(
        "INSERT INTO seats (id, schedule_id, section, row_number, seat_number, price) VALUES ($1, $2, 'A', 1, 2, 0)",
    )
    .bind(Uuid::now_v7())
    .bind(f.schedule)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint(err), "seats_price_check");
    let err = sqlx::query(
        "INSERT INTO seats (id, schedule_id, section, row_number, seat_number, price) VALUES ($1, $2, 'A', 1, 1, 10)",
    )
    .bind(Uuid::now_v7())
    .bind(f.schedule)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint(err), "seats_position_key");
    let err =
        sqlx::query("INSERT INTO users (id, email, password_hash, name) VALUES ($1, 'Upper@Example.com', 'x', 'U')")
            .bind(Uuid::now_v7())
            .execute(&pool)
            .await
            .unwrap_err();
    assert_eq!(constraint(err), "users_email_normalised_check");
}
