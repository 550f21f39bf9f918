//! The private PostgreSQL launcher used by `vextrus serve`, `migrate` and the tests.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use vextrus::postgres::{PostgresOptions, PrivatePostgres};

#[tokio::test]
async fn a_restart_on_the_same_data_directory_is_not_stopped_by_the_previous_watchdog() {
    let dir =
        std::env::temp_dir().join(format!("vextrus-restart-{}", uuid::Uuid::now_v7().simple()));
    let options = PostgresOptions::persistent(dir.clone());

    let first = tokio::task::spawn_blocking({
        let options = options.clone();
        move || PrivatePostgres::start(&options)
    })
    .await
    .unwrap()
    .unwrap();
    let mut conn = PgConnection::connect_with(&first.connect_options("postgres"))
        .await
        .unwrap();
    sqlx::query("create database kept")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || first.stop())
        .await
        .unwrap()
        .unwrap();

    // As `vextrus migrate` followed at once by `vextrus serve`: the first run's watchdog wakes
    // while the second server is up, and must leave it alone.
    let second = tokio::task::spawn_blocking(move || PrivatePostgres::start(&options))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut conn = PgConnection::connect_with(&second.connect_options("kept"))
        .await
        .expect("the data survived and the server is up");
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
