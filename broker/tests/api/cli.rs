//! The `brokkr-broker` CLI as an operator meets it: `migrate` says what it did, commands other
//! than `serve` and `migrate` refuse to create a database, and `serve --admin-pak-file` hands
//! the first admin PAK over in a private file instead of printing it.

use std::io::BufRead;
use std::process::{Command, Stdio};

use brokkr_broker::startup::Application;
use reqwest::Method;

use crate::helpers::*;

both_backends!(migrate_reports_what_it_applied, |app| {
    let backend = if app.database_url.starts_with("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let (url, _dir) = fresh_database(backend).await;
    let first = run_cli(&url, &["migrate"]);
    assert!(
        first.contains("applied") && first.contains("migration"),
        "{first}"
    );
    let again = run_cli(&url, &["migrate"]);
    assert!(again.contains("already up to date"), "{again}");
});

both_backends!(commands_refuse_to_create_a_database, |app| {
    if app.database_url.starts_with("sqlite") {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("elsewhere.db");
        refuse_everywhere(&format!("sqlite://{}", missing.display()), "elsewhere.db");
        assert!(!missing.exists(), "nothing was created");
    } else {
        // An empty database that was never migrated.
        let (empty, _) = fresh_database(Backend::Postgres).await;
        refuse_everywhere(&empty, "brokkr_test_");
    }
});

fn refuse_everywhere(url: &str, named: &str) {
    for args in [
        &["rotate", "admin"][..],
        &["create", "agent", "--name", "a", "--cluster-name", "c"],
        &["audit", "verify"],
        &["webhooks", "rekey"],
    ] {
        let (ok, stdout, stderr) = cli(url, args);
        assert!(!ok, "{args:?} succeeded: {stdout}");
        assert!(
            stderr.contains("no Brokkr database at") && stderr.contains(named),
            "{args:?}: {stderr}"
        );
        assert!(
            !stdout.contains("brokkr_BR"),
            "no PAK for a database that does not exist"
        );
    }
}

#[tokio::test]
async fn the_first_admin_pak_goes_to_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let file = dir.path().join("admin.pak");
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokkr-broker"))
        .args(["serve", "--listen-addr", "127.0.0.1:0", "--admin-pak-file"])
        .arg(&file)
        .env("BROKKR__DATABASE__URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let listening = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("broker listening"));
    assert!(listening.is_some(), "the broker started");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!printed.contains("brokkr_BR"), "not printed: {printed}");
    let pak = std::fs::read_to_string(&file).unwrap();
    assert!(pak.trim().starts_with("brokkr_BR"), "{pak}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let verified = run_cli(&url, &["rotate", "admin"]);
    assert!(
        verified
            .trim()
            .lines()
            .last()
            .unwrap()
            .starts_with("brokkr_BR")
    );
}

both_backends!(
    a_new_database_adopts_the_admin_pak_waiting_in_the_file,
    |app| {
        let backend = if app.database_url.starts_with("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pak");
        // What the Helm chart's Secret holds.
        let preset = "brokkr_BRabcd1234_0123456789abcdefghijABCDEFGHIJ01";
        std::fs::write(&file, format!("{preset}\n")).unwrap();
        let (url, db_dir) = fresh_database(backend).await;
        let mut settings = settings_for(&url);
        settings.broker.admin_pak_file = file.display().to_string();
        let adopted = spawn_app_with(settings.clone(), db_dir).await;
        assert!(adopted.admin.is_empty(), "nothing new to hand over");
        let status = adopted
            .status_of(Method::GET, "/api/v1/agents", preset)
            .await;
        assert_eq!(status, 200, "the file's PAK is the admin's");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().trim(),
            preset,
            "the file is left as it was"
        );

        // A file that holds something else stops a new database from starting.
        std::fs::write(&file, "not-a-pak").unwrap();
        let (url, _other) = fresh_database(backend).await;
        settings.database.url = url;
        let err = Application::build(settings).await.unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains("no PAK"),
            "{err}"
        );
        assert!(
            !err.contains("not-a-pak"),
            "the file's content is not echoed"
        );
    }
);
