//! What a server holds that mlflow-archive does not carry, counted, so that a command can name
//! each kind with its count instead of skipping it in silence.
//!
//! The kinds and the requests that count them (measured on MLflow 3.17.2; none of these has a
//! count endpoint, so each listing is read with the largest page and its items counted):
//!
//! | kind | request | scope |
//! |---|---|---|
//! | scorers | `GET api/3.0/mlflow/scorers/list` (every experiment), or `?experiment_ids=…` (100 ids a request) | experiment |
//! | issues | `POST api/3.0/mlflow/issues/search`, paged (filtered here by experiment) | experiment |
//! | review queues | `GET api/3.0/mlflow/review-queues/list?experiment_id=…`, one experiment a request | experiment |
//! | prompt optimization jobs | `GET api/3.0/mlflow/prompt-optimization/jobs/search?experiment_id=…` | experiment |
//! | webhooks | `GET api/2.0/mlflow/webhooks`, paged | server |
//! | AI gateway secrets, endpoints, model definitions | `GET api/3.0/mlflow/gateway/{secrets,endpoints,model-definitions}/list` | server |
//! | AI gateway budget policies, guardrails | `GET api/3.0/mlflow/gateway/{budgets,guardrails}/list`, paged | server |
//! | MCP servers | `GET api/3.0/mlflow/mcp-servers`, paged | server |
//!
//! Not counted:
//! - **label schemas**: their only listing, `GET label-schemas/list?experiment_id=…`, *writes* to
//!   the server (it creates the undeletable default schema `Feedback` in every experiment it
//!   touches), and an inventory must not change the source. The default schema is made the same
//!   way on the destination; custom schemas are named in README's "What is not carried".
//! - online scoring configurations (part of their scorer), gateway endpoint bindings and
//!   guardrail configurations (part of their endpoint), MCP server versions and access endpoints
//!   (part of their MCP server), async jobs other than prompt optimization (execution state of
//!   the server's job runner, not objects of its users).
//! - on a server with workspaces, a client that names none counts in every workspace (each
//!   listing again with `X-MLFLOW-WORKSPACE`), and one that names one counts there; a server
//!   without workspaces is never sent the header (it refuses every request that has it).
//!
//! A server that lacks a kind's endpoint (an older MLflow, Databricks) has none of that kind, and
//! a file store (`server-info` says `FileStore`) has none of them at all: MLflow 3.17.2 keeps them
//! only in SQL stores (its file store answers their listings with an HTML 500, or
//! `NOT_IMPLEMENTED`).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::error::{Error, Result};
use crate::mlflow::retry::Idempotency::Safe;
use crate::mlflow::types::ViewType;
use crate::mlflow::{Client, paginate};

/// Above this many experiments, the kinds listed one experiment at a time (review queues,
/// prompt optimization jobs) are not counted: the inventory would cost two requests per
/// experiment.
pub const MAX_EXPERIMENTS_COUNTED: usize = 1000;

/// The page size of the listings (the largest all of them accept).
const PAGE: u32 = 1000;

/// Experiment ids sent in one `scorers/list` (they travel in the query string).
const IDS_PER_REQUEST: usize = 100;

/// Requests in flight at once.
const CONCURRENCY: usize = 4;

/// Objects of one kind the server holds that mlflow-archive does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncarried {
    /// The kind, plural (`"scorers"`, `"AI gateway secrets"`, ...).
    pub kind: &'static str,
    /// How many the server holds (in the experiments asked about, for per-experiment kinds).
    pub count: u64,
    /// One short reason why they are not carried.
    pub why: &'static str,
}

impl Uncarried {
    /// The kind as it reads after the count: singular for one (`1 scorer`), else [`kind`](Self::kind).
    pub fn noun(&self) -> &'static str {
        match KINDS.iter().find(|k| k.kind == self.kind) {
            Some(k) if self.count == 1 => k.one,
            _ => self.kind,
        }
    }
}

/// A kind: its names and why it is not carried.
struct Kind {
    kind: &'static str,
    one: &'static str,
    why: &'static str,
}

impl Kind {
    fn counted(&self, count: u64) -> Uncarried {
        Uncarried {
            kind: self.kind,
            count,
            why: self.why,
        }
    }
}

const SCORERS: Kind = Kind {
    kind: "scorers",
    one: "scorer",
    why: "they are serialized judges and code, not carried yet",
};
const ISSUES: Kind = Kind {
    kind: "issues",
    one: "issue",
    why: "they point at runs and traces by id, not carried yet",
};
const REVIEW_QUEUES: Kind = Kind {
    kind: "review queues",
    one: "review queue",
    why: "their items point at traces by id, not carried yet",
};
const OPTIMIZATION_JOBS: Kind = Kind {
    kind: "prompt optimization jobs",
    one: "prompt optimization job",
    why: "a job is execution state: making it again means running it again",
};
const WEBHOOKS: Kind = Kind {
    kind: "webhooks",
    one: "webhook",
    why: "their signing secrets cannot be read back",
};
const GATEWAY_SECRETS: Kind = Kind {
    kind: "AI gateway secrets",
    one: "AI gateway secret",
    why: "secret values cannot be read back",
};
const GATEWAY_ENDPOINTS: Kind = Kind {
    kind: "AI gateway endpoints",
    one: "AI gateway endpoint",
    why: "they use gateway secrets, which cannot be read back",
};
const GATEWAY_MODELS: Kind = Kind {
    kind: "AI gateway model definitions",
    one: "AI gateway model definition",
    why: "they use gateway secrets, which cannot be read back",
};
const GATEWAY_BUDGETS: Kind = Kind {
    kind: "AI gateway budget policies",
    one: "AI gateway budget policy",
    why: "gateway configuration, not carried yet",
};
const GATEWAY_GUARDRAILS: Kind = Kind {
    kind: "AI gateway guardrails",
    one: "AI gateway guardrail",
    why: "they use scorers, which are not carried",
};
const MCP_SERVERS: Kind = Kind {
    kind: "MCP servers",
    one: "MCP server",
    why: "the MCP server registry is not carried yet",
};

/// Every kind, in the order [`Client::uncarried`] reports them.
const KINDS: [&Kind; 11] = [
    &SCORERS,
    &ISSUES,
    &REVIEW_QUEUES,
    &OPTIMIZATION_JOBS,
    &WEBHOOKS,
    &GATEWAY_SECRETS,
    &GATEWAY_ENDPOINTS,
    &GATEWAY_MODELS,
    &GATEWAY_BUDGETS,
    &GATEWAY_GUARDRAILS,
    &MCP_SERVERS,
];

/// What `server-info` says that matters here.
#[derive(Deserialize, Default)]
struct Capabilities {
    #[serde(default)]
    store_type: String,
    #[serde(default)]
    workspaces_enabled: bool,
    #[serde(default)]
    features_enabled: Features,
}

#[derive(Deserialize)]
struct Features {
    #[serde(default = "yes")]
    gateway: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features { gateway: true }
    }
}

fn yes() -> bool {
    true
}

/// How a listing is asked for.
enum Request {
    /// A GET; the page token goes into the query.
    Get,
    /// A POST of this body; the page token goes into the body.
    Post(Value),
}

/// One listing to count.
struct Listing {
    request: Request,
    url: Url,
    /// The answer's field that holds the items (absent when there are none).
    key: &'static str,
    /// Whether the answer has a `next_page_token`.
    paged: bool,
    call: String,
}

/// Which items count.
#[derive(Clone)]
enum Keep {
    All,
    /// Those whose `experiment_id` is one of these.
    Experiments(Arc<BTreeSet<String>>),
}

impl Keep {
    fn keeps(&self, item: &Value) -> bool {
        match self {
            Keep::All => true,
            Keep::Experiments(ids) => {
                id_text(item.get("experiment_id")).is_some_and(|id| ids.contains(&id))
            }
        }
    }
}

/// An id the server writes as a string or as a number (`scorers/list` does the latter).
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How many of the page's items count, and the next page's token: `Err` with what is wrong when
/// the answer's list field is not a list.
fn count_page(
    answer: &Value,
    key: &str,
    paged: bool,
    keep: &Keep,
) -> std::result::Result<(u64, Option<String>), String> {
    let items: &[Value] = match answer.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("the answer's `{key}` is not a list")),
    };
    let n = items.iter().filter(|i| keep.keeps(i)).count() as u64;
    let next = if paged {
        answer
            .get("next_page_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    } else {
        None
    };
    Ok((n, next))
}

/// True for the answers of a server that does not have an endpoint or a feature: MLflow's
/// `FEATURE_DISABLED`/`NOT_IMPLEMENTED`/`ENDPOINT_NOT_FOUND`, an object that does not exist
/// (an experiment gone meanwhile), or a bare 404, 405 or 501 without an MLflow error (no such
/// route: an older MLflow).
fn absent(e: &Error) -> bool {
    e.is_endpoint_absent() || e.is_not_found()
}

impl Client {
    /// Counts what the server holds of the kinds mlflow-archive does not carry (the module's
    /// table), and returns the kinds it holds any of, in a fixed order.
    ///
    /// `experiment_ids` `None` counts the whole server; `Some(ids)` counts only the objects of
    /// those experiments, for the kinds that belong to an experiment (scorers, issues, review
    /// queues, prompt optimization jobs), and leaves out the server-wide kinds (webhooks, AI
    /// gateway objects, MCP servers, workspaces).
    ///
    /// Cost: one `server-info`; then one request each for scorers (one per 100 experiments with
    /// `Some`), issues (per 1000 issues), webhooks, the five gateway listings and MCP servers;
    /// and two per experiment (review queues, prompt optimization jobs), for `Some(ids)` or for
    /// the server's active experiments (found with one `experiments/search` per 1000). Above
    /// [`MAX_EXPERIMENTS_COUNTED`] experiments, review queues and prompt optimization jobs are
    /// not counted (logged at level info). Four requests are in flight at a time. Label schemas
    /// are never counted: listing them writes to the server (see the module's notes).
    ///
    /// A kind whose endpoint the server does not have (an older MLflow: HTTP 404,
    /// `ENDPOINT_NOT_FOUND`, `FEATURE_DISABLED`, `NOT_IMPLEMENTED`) counts as none, and a file
    /// store has none of them.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors), for any other failure of
    /// any listing (a refused permission, a failed connection, an answer that is not the MLflow
    /// API).
    pub async fn uncarried(&self, experiment_ids: Option<&[String]>) -> Result<Vec<Uncarried>> {
        let caps = self.capabilities().await?;
        // On a server with workspaces, a client that names none counts in each of them.
        if caps.workspaces_enabled && self.workspace().is_none() {
            let mut total: Vec<Uncarried> = Vec::new();
            for ws in self.list_workspaces().await? {
                let found = Box::pin(self.in_workspace(&ws.name).uncarried(experiment_ids)).await?;
                for u in found {
                    match total.iter_mut().find(|t| t.kind == u.kind) {
                        Some(t) => t.count += u.count,
                        None => total.push(u),
                    }
                }
            }
            total.sort_by_key(|u| KINDS.iter().position(|k| k.kind == u.kind));
            return Ok(total);
        }
        if caps.store_type == "FileStore" {
            return Ok(Vec::new());
        }
        let experiments: Vec<String> = match experiment_ids {
            Some(ids) => ids.to_vec(),
            None => {
                self.search_experiments(ViewType::ActiveOnly, None)
                    .map_ok(|e| e.experiment_id)
                    .take(MAX_EXPERIMENTS_COUNTED + 1)
                    .try_collect()
                    .await?
            }
        };
        let per_experiment = experiments.len() <= MAX_EXPERIMENTS_COUNTED;
        if !per_experiment {
            tracing::info!(
                server = self.server(),
                "more than {MAX_EXPERIMENTS_COUNTED} experiments: review queues and prompt optimization jobs are not counted"
            );
        }
        let keep = match experiment_ids {
            Some(ids) => Keep::Experiments(Arc::new(ids.iter().cloned().collect())),
            None => Keep::All,
        };

        let mut counts: Vec<(&Kind, BoxFuture<'_, Result<u64>>)> = vec![
            (&SCORERS, self.count_scorers(experiment_ids).boxed()),
            (&ISSUES, self.count_issues(experiment_ids, keep).boxed()),
        ];
        if per_experiment {
            let review_queues: Vec<Listing> = experiments
                .iter()
                .map(|id| {
                    let mut url = self.api3_url("review-queues/list");
                    url.query_pairs_mut()
                        .append_pair("experiment_id", id)
                        .append_pair("max_results", &self.page(PAGE).to_string());
                    Listing {
                        request: Request::Get,
                        url,
                        key: "review_queues",
                        paged: true,
                        call: format!("GET review-queues/list (experiment id {id})"),
                    }
                })
                .collect();
            let jobs: Vec<Listing> = experiments
                .iter()
                .map(|id| {
                    let mut url = self.api3_url("prompt-optimization/jobs/search");
                    url.query_pairs_mut().append_pair("experiment_id", id);
                    Listing {
                        request: Request::Get,
                        url,
                        key: "jobs",
                        paged: false,
                        call: format!("GET prompt-optimization/jobs/search (experiment id {id})"),
                    }
                })
                .collect();
            let review_queues = self.count_each(review_queues);
            let jobs = self.count_each(jobs);
            counts.push((&REVIEW_QUEUES, review_queues.boxed()));
            counts.push((&OPTIMIZATION_JOBS, jobs.boxed()));
        }
        if experiment_ids.is_none() {
            let get = |kind: &'static Kind, url: Url, key, paged, call: &str| {
                let mut url = url;
                if paged {
                    url.query_pairs_mut()
                        .append_pair("max_results", &self.page(PAGE).to_string());
                }
                let listing = Listing {
                    request: Request::Get,
                    url,
                    key,
                    paged,
                    call: call.to_string(),
                };
                (kind, self.count_listing(listing, Keep::All).boxed())
            };
            counts.push(get(
                &WEBHOOKS,
                self.api_url("webhooks"),
                "webhooks",
                true,
                "GET webhooks",
            ));
            if caps.features_enabled.gateway {
                for (kind, path, key, paged) in [
                    (&GATEWAY_SECRETS, "secrets", "secrets", false),
                    (&GATEWAY_ENDPOINTS, "endpoints", "endpoints", false),
                    (
                        &GATEWAY_MODELS,
                        "model-definitions",
                        "model_definitions",
                        false,
                    ),
                    (&GATEWAY_BUDGETS, "budgets", "budget_policies", true),
                    (&GATEWAY_GUARDRAILS, "guardrails", "guardrails", true),
                ] {
                    let path = format!("gateway/{path}/list");
                    counts.push(get(
                        kind,
                        self.api3_url(&path),
                        key,
                        paged,
                        &format!("GET {path}"),
                    ));
                }
            }
            counts.push(get(
                &MCP_SERVERS,
                self.api3_url("mcp-servers"),
                "mcp_servers",
                true,
                "GET mcp-servers",
            ));
        }

        stream::iter(
            counts
                .into_iter()
                .map(|(kind, count)| count.map(move |n| n.map(|n| kind.counted(n)))),
        )
        .buffered(CONCURRENCY)
        .try_filter(|u| std::future::ready(u.count > 0))
        .try_collect()
        .await
    }

    /// `server-info`, or what an older server without it means (no workspaces, a store of
    /// unknown kind).
    async fn capabilities(&self) -> Result<Capabilities> {
        let call = "GET server-info";
        match self
            .get_url(self.url("api/3.0/mlflow/server-info"), call)
            .await
        {
            Ok(c) => Ok(c),
            Err(e) if absent(&e) => Ok(Capabilities::default()),
            Err(e) => Err(e),
        }
    }

    /// Scorers (their latest versions: one per name and experiment).
    async fn count_scorers(&self, experiment_ids: Option<&[String]>) -> Result<u64> {
        let listing = |ids: &[String]| {
            let mut url = self.api3_url("scorers/list");
            for id in ids {
                url.query_pairs_mut().append_pair("experiment_ids", id);
            }
            Listing {
                request: Request::Get,
                url,
                key: "scorers",
                paged: false,
                call: if ids.is_empty() {
                    "GET scorers/list".to_string()
                } else {
                    format!("GET scorers/list (experiments {ids:?})")
                },
            }
        };
        let Some(ids) = experiment_ids else {
            return self.count_listing(listing(&[]), Keep::All).await;
        };
        let mut n = 0;
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            // Kept by experiment as well: a server that ignores `experiment_ids` lists them all.
            let keep = Keep::Experiments(Arc::new(chunk.iter().cloned().collect()));
            n += self.count_listing(listing(chunk), keep).await?;
        }
        Ok(n)
    }

    /// Issues: one search of the whole server (it takes one experiment at most), kept by
    /// experiment.
    async fn count_issues(&self, experiment_ids: Option<&[String]>, keep: Keep) -> Result<u64> {
        if experiment_ids.is_some_and(<[String]>::is_empty) {
            return Ok(0);
        }
        let listing = Listing {
            request: Request::Post(json!({ "max_results": self.page(PAGE) })),
            url: self.api3_url("issues/search"),
            key: "issues",
            paged: true,
            call: "POST issues/search".into(),
        };
        self.count_listing(listing, keep).await
    }

    /// Counts listings (one per experiment), [`CONCURRENCY`] at a time, summed.
    async fn count_each(&self, listings: Vec<Listing>) -> Result<u64> {
        stream::iter(listings)
            .map(|l| self.count_listing(l, Keep::All))
            .buffer_unordered(CONCURRENCY)
            .try_fold(0, |sum, n| std::future::ready(Ok(sum + n)))
            .await
    }

    /// Counts a listing's items, page by page; a listing the server does not have counts none.
    async fn count_listing(&self, listing: Listing, keep: Keep) -> Result<u64> {
        let listing = Arc::new(listing);
        let client = self.clone();
        paginate::pages(move |token: Option<String>| {
            let client = client.clone();
            let listing = listing.clone();
            let keep = keep.clone();
            async move {
                let first = token.is_none();
                let answer: Value = match client.list_page(&listing, token).await {
                    Ok(a) => a,
                    Err(e) if first && absent(&e) => {
                        tracing::debug!(server = client.server(), answer = %e, "no such listing");
                        return Ok((Vec::new(), None));
                    }
                    Err(e) => return Err(e),
                };
                let (n, next) = count_page(&answer, listing.key, listing.paged, &keep)
                    .map_err(|e| client.protocol(&listing.call, e))?;
                Ok((vec![n], next))
            }
        })
        .try_fold(0, |sum, page| {
            std::future::ready(Ok(sum + page.iter().sum::<u64>()))
        })
        .await
    }

    async fn list_page(&self, listing: &Listing, token: Option<String>) -> Result<Value> {
        let mut url = listing.url.clone();
        match &listing.request {
            Request::Get => {
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("page_token", t);
                }
                self.get_url(url, &listing.call).await
            }
            Request::Post(body) => {
                let mut body = body.clone();
                if let Some(t) = token {
                    body["page_token"] = json!(t);
                }
                self.call_url(Method::POST, url, &body, &listing.call, Safe)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlflow::json as mjson;

    fn page(text: &str) -> Value {
        mjson::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn items_are_counted_and_the_next_token_kept_for_paged_listings_only() {
        let issues = page(
            r#"{"issues": [{"issue_id": "iss-1", "experiment_id": "1"},
                           {"issue_id": "iss-2", "experiment_id": "2"}],
                "next_page_token": "t2"}"#,
        );
        assert_eq!(
            count_page(&issues, "issues", true, &Keep::All),
            Ok((2, Some("t2".into())))
        );
        assert_eq!(
            count_page(&issues, "issues", false, &Keep::All),
            Ok((2, None))
        );
        // MLflow leaves an empty list out, and ends with an empty or absent token.
        assert_eq!(
            count_page(
                &page(r#"{"next_page_token": ""}"#),
                "issues",
                true,
                &Keep::All
            ),
            Ok((0, None))
        );
        assert_eq!(
            count_page(&page("{}"), "secrets", false, &Keep::All),
            Ok((0, None))
        );
        assert_eq!(
            count_page(
                &page(r#"{"mcp_servers": [], "next_page_token": null}"#),
                "mcp_servers",
                true,
                &Keep::All
            ),
            Ok((0, None))
        );
        assert!(
            count_page(
                &page(r#"{"scorers": {"a": 1}}"#),
                "scorers",
                false,
                &Keep::All
            )
            .unwrap_err()
            .contains("`scorers`")
        );
    }

    #[test]
    fn items_are_kept_by_experiment_whether_the_id_is_a_string_or_a_number() {
        // `scorers/list` writes the experiment id as a number, `issues/search` as a string.
        let scorers = page(
            r#"{"scorers": [{"experiment_id": 1, "scorer_name": "polite", "scorer_version": 1},
                            {"experiment_id": 2, "scorer_name": "safety", "scorer_version": 3},
                            {"experiment_id": "1", "scorer_name": "x", "scorer_version": 1},
                            {"scorer_name": "no experiment"}]}"#,
        );
        let only =
            |ids: &[&str]| Keep::Experiments(Arc::new(ids.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            count_page(&scorers, "scorers", false, &only(&["1"])),
            Ok((2, None))
        );
        assert_eq!(
            count_page(&scorers, "scorers", false, &only(&["2", "9"])),
            Ok((1, None))
        );
        assert_eq!(
            count_page(&scorers, "scorers", false, &only(&[])),
            Ok((0, None))
        );
        assert_eq!(
            count_page(&scorers, "scorers", false, &Keep::All),
            Ok((4, None))
        );
    }

    #[test]
    fn server_info_says_the_store_workspaces_and_gateway() {
        let c: Capabilities = mjson::parse(
            br#"{"store_type":"SqlStore","workspaces_enabled":true,"trace_archival_enabled":false,
                 "features_enabled":{"gateway":false}}"#,
        )
        .unwrap();
        assert_eq!(c.store_type, "SqlStore");
        assert!(c.workspaces_enabled);
        assert!(!c.features_enabled.gateway);
        // What an answer leaves out: no workspaces, a gateway.
        let c: Capabilities = mjson::parse(br#"{"store_type":"FileStore"}"#).unwrap();
        assert!(!c.workspaces_enabled);
        assert!(c.features_enabled.gateway);
        let c: Capabilities = mjson::parse(br#"{"features_enabled":{}}"#).unwrap();
        assert!(c.features_enabled.gateway);
        let c = Capabilities::default();
        assert!(!c.workspaces_enabled && c.features_enabled.gateway);
    }

    #[test]
    fn only_the_answers_of_a_server_without_the_listing_mean_none() {
        let api = |status, code: &str| {
            Error::Api(Box::new(crate::error::ApiError {
                call: "GET scorers/list".into(),
                server: "http://h".into(),
                status,
                error_code: code.into(),
                message: String::new(),
            }))
        };
        assert!(absent(&api(404, "")));
        assert!(absent(&api(405, "")));
        assert!(absent(&api(501, "")));
        assert!(absent(&api(501, "NOT_IMPLEMENTED")));
        assert!(absent(&api(500, "FEATURE_DISABLED")));
        assert!(absent(&api(404, "ENDPOINT_NOT_FOUND")));
        assert!(absent(&api(404, "RESOURCE_DOES_NOT_EXIST")));
        assert!(!absent(&api(500, "")));
        assert!(!absent(&api(503, "")));
        assert!(!absent(&api(403, "PERMISSION_DENIED")));
        assert!(!absent(&api(401, "")));
        assert!(!absent(&api(400, "INVALID_PARAMETER_VALUE")));
    }

    #[test]
    fn one_object_reads_in_the_singular() {
        let one = GATEWAY_BUDGETS.counted(1);
        assert_eq!(one.noun(), "AI gateway budget policy");
        assert_eq!(
            GATEWAY_BUDGETS.counted(2).noun(),
            "AI gateway budget policies"
        );
        for k in KINDS {
            assert_ne!(k.kind, k.one);
            assert!(!k.why.ends_with('.') && k.why.chars().next().unwrap().is_lowercase());
        }
    }

    #[test]
    fn readme_names_every_kind_and_label_schemas() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let section = readme
            .split("## What is not carried, and why")
            .nth(1)
            .expect("README has the section");
        for k in KINDS {
            assert!(
                section.contains(k.kind),
                "README does not name {:?}",
                k.kind
            );
        }
        assert!(section.contains("label schemas"));
    }
}
