//! The one integration-test binary. Live tests start real `mlflow server` processes (see
//! `util::server`); under `CI=true` they never skip.

mod auth;
mod chaos;
mod cli;
mod client;
mod cuts;
mod databricks;
mod databricks_adv;
mod databricks_permissions;
mod databricks_standin;
mod databricks_uc;
mod datasets_client;
mod dropin;
mod export;
mod fidelity;
mod format;
mod format_util;
mod fuzz_replay;
mod genai;
mod hops;
mod hostile;
mod inventory;
mod legacy;
mod models;
mod prompts;
mod retries;
mod roundtrip;
mod spec_examples;
mod store_matrix;
mod stores;
mod tls;
mod traces_client;
mod util;
mod vectors;
mod whole_server;
mod workspaces;
