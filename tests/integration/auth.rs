//! Credentials from MLflow's conventions, against a real `mlflow server --app-name basic-auth`,
//! and the headers the client sends (read through the fault proxy).

use mlflow_archive::mlflow::{Client, Env, TrackingConfig};

use crate::util::proxy::FaultProxy;
use crate::util::server::{admin, auth_server};
use crate::util::{cli, output, unique};

fn admin_client(uri: &str) -> Client {
    let a = admin();
    let env = Env {
        username: Some(a.username),
        password: Some(a.password),
        ..Env::default()
    };
    Client::new(TrackingConfig::resolve(Some(uri), &env).unwrap()).unwrap()
}

#[tokio::test]
async fn list_registered_models_with_right_and_wrong_credentials() {
    let Some(server) = auth_server() else { return };
    let name = unique("secured");
    admin_client(&server.uri)
        .create_registered_model(&name, Some("behind basic auth"), &[])
        .await
        .unwrap();
    let a = admin();

    let mut ok_cmd = cli();
    ok_cmd
        .args([
            "list-registered-models",
            "-o",
            "-",
            "--src-uri",
            &server.uri,
        ])
        .env("MLFLOW_TRACKING_USERNAME", &a.username)
        .env("MLFLOW_TRACKING_PASSWORD", &a.password);
    let ok = output(ok_cmd).await;
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = doc["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&name.as_str()), "{names:?}");
    assert!(!stdout.contains(&a.password) && !stderr.contains(&a.password));

    // Credentials in the URI itself work too, and are never echoed.
    let with_userinfo = server
        .uri
        .replace("http://", &format!("http://{}:{}@", a.username, a.password));
    let mut ok_cmd = cli();
    ok_cmd.args([
        "list-registered-models",
        "-o",
        "-",
        "--src-uri",
        &with_userinfo,
    ]);
    let ok = output(ok_cmd).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!String::from_utf8_lossy(&ok.stderr).contains(&a.password));

    let wrong_password = "Wr0ng-pw-never-printed";
    for (username, password, uri) in [
        (
            Some(a.username.as_str()),
            Some(wrong_password),
            server.uri.clone(),
        ),
        (None, None, server.uri.clone()),
        (
            None,
            None,
            server
                .uri
                .replace("http://", &format!("http://admin:{wrong_password}@")),
        ),
    ] {
        let mut cmd = cli();
        cmd.args(["list-registered-models", "-o", "-", "--src-uri", &uri]);
        if let (Some(u), Some(p)) = (username, password) {
            cmd.env("MLFLOW_TRACKING_USERNAME", u)
                .env("MLFLOW_TRACKING_PASSWORD", p);
        }
        let out = output(cmd).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stdout.is_empty(), "nothing is written on failure: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("HTTP 401"), "{stderr}");
        assert!(
            stderr.contains("MLFLOW_TRACKING_USERNAME"),
            "says what to do: {stderr}"
        );
        assert!(
            !stderr.contains(wrong_password) && !stderr.contains(&a.password),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn token_and_basic_credentials_are_sent_as_headers() {
    let Some(server) = auth_server() else { return };
    let proxy = FaultProxy::start(&server.uri).await;

    let env = Env {
        token: Some("tok-123".into()),
        ..Env::default()
    };
    let c = Client::new(TrackingConfig::resolve(Some(&proxy.uri), &env).unwrap()).unwrap();
    let _ = c.get_experiment("0").await; // basic-auth refuses bearer tokens; the header is what counts
    let heads = proxy.requests();
    assert!(
        heads[0].contains("\nauthorization: Bearer tok-123"),
        "{}",
        heads[0]
    );

    proxy.clear();
    let admin_via_proxy = admin_client(&proxy.uri);
    admin_via_proxy.get_experiment("0").await.unwrap();
    let heads = proxy.requests();
    assert!(heads[0].contains("\nauthorization: Basic "), "{}", heads[0]);
    assert!(
        heads[0].contains("\nuser-agent: mlflow-archive/"),
        "{}",
        heads[0]
    );
}
