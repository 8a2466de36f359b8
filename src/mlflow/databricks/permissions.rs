//! Permissions on a Databricks workspace: the access control lists of experiments and of
//! workspace-registry models (`/api/2.0/permissions/...`), and the Unity Catalog grants of
//! registered models (`/api/2.1/unity-catalog/permissions/function/...`).
//!
//! Only what was granted on the object itself is read (an entry `inherited: false`; Unity
//! Catalog's `permissions` endpoint lists direct grants only): what a folder, the registry or a
//! catalog passes down belongs to them, not to the object. Writes add or update one principal per
//! request (`PATCH`): one principal unknown to the workspace fails a whole request, and `PUT`
//! would replace the list, the importer's own access included.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::Registry;
use crate::error::{Error, Result};
use crate::mlflow::retry::Idempotency::Safe;
use crate::mlflow::{Client, paginate};

/// The kind of principal an access control entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PrincipalKind {
    /// A user, by user name (an email).
    User,
    /// A group, by name.
    Group,
    /// A service principal, by application id.
    ServicePrincipal,
}

impl PrincipalKind {
    /// Every kind.
    pub const ALL: [PrincipalKind; 3] = [
        PrincipalKind::User,
        PrincipalKind::Group,
        PrincipalKind::ServicePrincipal,
    ];

    /// The field of an access control entry that names such a principal.
    pub fn field(self) -> &'static str {
        match self {
            PrincipalKind::User => "user_name",
            PrincipalKind::Group => "group_name",
            PrincipalKind::ServicePrincipal => "service_principal_name",
        }
    }

    /// Its name in an archive (`user`, `group`, `service_principal`).
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::ServicePrincipal => "service_principal",
        }
    }

    /// The kind [`name`](Self::name) gives, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind a Unity Catalog principal (which names no kind) most likely is: a user name is an
    /// email, a service principal's application id a UUID, anything else a group's name.
    pub fn guess(principal: &str) -> Self {
        let uuid = principal.len() == 36
            && principal.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if principal.contains('@') {
            PrincipalKind::User
        } else if uuid {
            PrincipalKind::ServicePrincipal
        } else {
            PrincipalKind::Group
        }
    }
}

impl std::fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::ServicePrincipal => "service principal",
        })
    }
}

/// One entry of a workspace access control list: a principal and its permission level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControl {
    /// What kind of principal it names.
    pub kind: PrincipalKind,
    /// The user name, group name or application id.
    pub principal: String,
    /// `CAN_READ`, `CAN_EDIT`, `CAN_MANAGE`, ... as the workspace names it.
    pub level: String,
}

/// One principal's Unity Catalog privileges on an object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrivilegeAssignment {
    /// A user name, group name or service principal application id.
    pub principal: String,
    /// `EXECUTE`, `APPLY_TAG`, `MANAGE`, ...
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// What was granted on one object itself: workspace access control entries, or Unity Catalog
/// grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPermissions {
    /// Direct access control entries (experiments, workspace-registry models).
    pub acl: Vec<AccessControl>,
    /// Direct grants (Unity Catalog models).
    pub grants: Vec<PrivilegeAssignment>,
}

/// A workspace object that has an access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclObject {
    /// An experiment, by id.
    Experiment(String),
    /// A workspace-registry model, by its Databricks id (not its name; see
    /// [`Client::registered_model_acl_object`]).
    RegisteredModel(String),
}

impl AclObject {
    fn path(&self) -> (&'static str, &str) {
        match self {
            AclObject::Experiment(id) => ("experiments", id),
            AclObject::RegisteredModel(id) => ("registered-models", id),
        }
    }
}

impl std::fmt::Display for AclObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclObject::Experiment(id) => write!(f, "experiment {id}"),
            AclObject::RegisteredModel(id) => write!(f, "registered model id {id}"),
        }
    }
}

#[derive(Deserialize)]
struct AclAnswer {
    #[serde(default)]
    access_control_list: Vec<AclItem>,
}

#[derive(Deserialize)]
struct AclItem {
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    service_principal_name: Option<String>,
    #[serde(default)]
    all_permissions: Vec<PermissionItem>,
}

#[derive(Deserialize)]
struct PermissionItem {
    #[serde(default)]
    permission_level: String,
    #[serde(default)]
    inherited: bool,
}

#[derive(Deserialize)]
struct DatabricksModelAnswer {
    registered_model_databricks: DatabricksModel,
}

#[derive(Deserialize)]
struct DatabricksModel {
    id: String,
}

#[derive(Deserialize, Default)]
struct GrantsAnswer {
    #[serde(default)]
    privilege_assignments: Vec<PrivilegeAssignment>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Client {
    fn acl_url(&self, object: &AclObject) -> Url {
        let (kind, id) = object.path();
        segment_url(self.url(&format!("api/2.0/permissions/{kind}/")), id)
    }

    fn grants_url(&self, full_name: &str) -> Url {
        segment_url(
            self.url("api/2.1/unity-catalog/permissions/function/"),
            full_name,
        )
    }

    /// The access control list object of the workspace-registry model `name`: its Databricks id,
    /// from `GET api/2.0/mlflow/databricks/registered-models/get`.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a model that does not exist
    /// is a not-found error.
    pub async fn registered_model_acl_object(&self, name: &str) -> Result<AclObject> {
        let call = format!("GET databricks/registered-models/get (model {name:?})");
        let a: DatabricksModelAnswer = self
            .get(
                "databricks/registered-models/get",
                &json!({"name": name}),
                &call,
            )
            .await?;
        if a.registered_model_databricks.id.is_empty() {
            return Err(self.protocol(&call, "the answer names no model id".into()));
        }
        Ok(AclObject::RegisteredModel(a.registered_model_databricks.id))
    }

    /// The entries of an object's access control list granted on the object itself (not those
    /// it inherits), in the workspace's order.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors) (reading an access control
    /// list needs `CAN_MANAGE` on the object); [`Error::Protocol`] for an entry that names no
    /// user, group or service principal.
    pub async fn direct_acl(&self, object: &AclObject) -> Result<Vec<AccessControl>> {
        let call = format!("GET permissions ({object})");
        let a: AclAnswer = self.get_url(self.acl_url(object), &call).await?;
        let mut out = Vec::new();
        for item in a.access_control_list {
            let named = [
                (PrincipalKind::User, item.user_name),
                (PrincipalKind::Group, item.group_name),
                (PrincipalKind::ServicePrincipal, item.service_principal_name),
            ]
            .into_iter()
            .find_map(|(k, n)| n.filter(|n| !n.is_empty()).map(|n| (k, n)));
            let Some((kind, principal)) = named else {
                return Err(self.protocol(
                    &call,
                    "an access control entry names no user, group or service principal".into(),
                ));
            };
            for p in item.all_permissions.into_iter().filter(|p| !p.inherited) {
                if p.permission_level.is_empty() {
                    return Err(self.protocol(
                        &call,
                        format!("the entry of {kind} {principal:?} names no permission level"),
                    ));
                }
                out.push(AccessControl {
                    kind,
                    principal: principal.clone(),
                    level: p.permission_level,
                });
            }
        }
        Ok(out)
    }

    /// Adds `entry` to an object's access control list, or sets its principal's level
    /// (`PATCH`: the other entries stay).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a principal the workspace
    /// does not know is an [`Error::Api`] that [`is_unknown_principal`] recognises.
    pub async fn patch_acl(&self, object: &AclObject, entry: &AccessControl) -> Result<()> {
        let call = format!(
            "PATCH permissions ({object}, {} {:?})",
            entry.kind, entry.principal
        );
        let body = json!({"access_control_list": [{
            entry.kind.field(): entry.principal,
            "permission_level": entry.level,
        }]});
        self.call_unit_url(Method::PATCH, self.acl_url(object), &body, &call, Safe)
            .await
    }

    /// The Unity Catalog grants made on registered model `full_name` (`catalog.schema.model`)
    /// itself, every page.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors).
    pub async fn uc_grants(&self, full_name: &str) -> Result<Vec<PrivilegeAssignment>> {
        use futures_util::TryStreamExt;
        let call = format!("GET unity-catalog/permissions (model {full_name:?})");
        let url = self.grants_url(full_name);
        let mut seen = std::collections::HashSet::new();
        paginate::items(|token: Option<String>| {
            let (call, mut url) = (call.clone(), url.clone());
            let repeated = token.as_ref().is_some_and(|t| !seen.insert(t.clone()));
            async move {
                if repeated {
                    return Err(self.protocol(&call, "the same page token twice".into()));
                }
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("page_token", t);
                }
                let a: GrantsAnswer = self.get_url(url, &call).await?;
                Ok((a.privilege_assignments, a.next_page_token))
            }
        })
        .try_collect()
        .await
    }

    /// Grants `grant`'s privileges on registered model `full_name` to its principal (`PATCH`
    /// with `add` only: nothing is removed).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a principal Unity Catalog
    /// does not know is an [`Error::Api`] that [`is_unknown_principal`] recognises.
    pub async fn add_uc_grant(&self, full_name: &str, grant: &PrivilegeAssignment) -> Result<()> {
        let call = format!(
            "PATCH unity-catalog/permissions (model {full_name:?}, {:?})",
            grant.principal
        );
        let body = json!({"changes": [{"principal": grant.principal, "add": grant.privileges}]});
        self.call_unit_url(
            Method::PATCH,
            self.grants_url(full_name),
            &body,
            &call,
            Safe,
        )
        .await
    }
}

impl Client {
    /// What was granted on experiment `id` itself: its direct access control entries on a
    /// Databricks workspace; `None` on a server that keeps no permissions (MLflow's own).
    ///
    /// # Errors
    ///
    /// As [`Client::direct_acl`].
    pub async fn experiment_permissions(&self, id: &str) -> Result<Option<ObjectPermissions>> {
        if !self.config().is_databricks() {
            return Ok(None);
        }
        let acl = self
            .direct_acl(&AclObject::Experiment(id.to_string()))
            .await?;
        Ok(Some(ObjectPermissions {
            acl,
            grants: Vec::new(),
        }))
    }

    /// What was granted on registered model `name` itself: its direct access control entries in
    /// a workspace registry, its direct grants in Unity Catalog; `None` on a server that keeps no
    /// permissions.
    ///
    /// # Errors
    ///
    /// As [`Client::direct_acl`] and [`Client::uc_grants`].
    pub async fn model_permissions(&self, name: &str) -> Result<Option<ObjectPermissions>> {
        let Some(ws) = &self.config().databricks else {
            return Ok(None);
        };
        if ws.registry == Registry::UnityCatalog {
            return Ok(Some(ObjectPermissions {
                acl: Vec::new(),
                grants: self.uc_grants(name).await?,
            }));
        }
        let object = self.registered_model_acl_object(name).await?;
        Ok(Some(ObjectPermissions {
            acl: self.direct_acl(&object).await?,
            grants: Vec::new(),
        }))
    }
}

/// `base` with `segment` appended as one path segment (percent-encoded: a model's name may hold
/// any character).
fn segment_url(mut base: Url, segment: &str) -> Url {
    if let Ok(mut segs) = base.path_segments_mut() {
        segs.pop_if_empty().push(segment);
    }
    base
}

/// True when `e` is the workspace's answer that a principal does not exist: `Principal:
/// UserName(x) does not exist` (also `GroupName`, `ServicePrincipalName`) from the permissions
/// API, `Could not find principal with name x` from Unity Catalog; status 400 or 404.
pub fn is_unknown_principal(e: &Error) -> bool {
    let Some(a) = e.api() else {
        return false;
    };
    if !matches!(a.status, 400 | 404) {
        return false;
    }
    let m = a.message.as_str();
    let acl = ["UserName(", "GroupName(", "ServicePrincipalName("]
        .iter()
        .any(|k| m.contains(&format!("Principal: {k}")))
        && m.contains("does not exist");
    acl || m.contains("Could not find principal with name")
        || a.error_code == "PRINCIPAL_DOES_NOT_EXIST"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> Error {
        Error::api_refusal(status, code, message)
    }

    #[test]
    fn unknown_principals_are_told_from_other_refusals() {
        for (status, code, msg) in [
            (
                400,
                "INVALID_PARAMETER_VALUE",
                "Principal: UserName(ann@example.com) does not exist",
            ),
            (
                404,
                "RESOURCE_DOES_NOT_EXIST",
                "Principal: GroupName(ops) does not exist",
            ),
            (
                400,
                "INVALID_PARAMETER_VALUE",
                "Principal: ServicePrincipalName(9f0c) does not exist",
            ),
            (
                400,
                "PRINCIPAL_DOES_NOT_EXIST",
                "Could not find principal with name bob",
            ),
            (404, "NOT_FOUND", "Could not find principal with name bob"),
        ] {
            assert!(is_unknown_principal(&api(status, code, msg)), "{msg}");
            assert!(is_unknown_principal(
                &api(status, code, msg).within("experiment 7".into())
            ));
        }
        for (status, code, msg) in [
            (
                403,
                "PERMISSION_DENIED",
                "Principal: UserName(x) does not exist",
            ),
            (
                400,
                "INVALID_PARAMETER_VALUE",
                "Invalid permission level CAN_RUN",
            ),
            (
                404,
                "RESOURCE_DOES_NOT_EXIST",
                "Experiment 7 does not exist",
            ),
            (
                500,
                "INTERNAL_ERROR",
                "Could not find principal with name x",
            ),
        ] {
            assert!(!is_unknown_principal(&api(status, code, msg)), "{msg}");
        }
    }

    #[test]
    fn kinds_are_named_and_guessed() {
        for k in PrincipalKind::ALL {
            assert_eq!(PrincipalKind::parse(k.name()), Some(k));
        }
        assert_eq!(PrincipalKind::parse("robot"), None);
        assert_eq!(PrincipalKind::guess("ann@example.com"), PrincipalKind::User);
        assert_eq!(
            PrincipalKind::guess("6f4e2a1b-0c3d-4e5f-8a9b-0c1d2e3f4a5b"),
            PrincipalKind::ServicePrincipal
        );
        assert_eq!(
            PrincipalKind::guess("data-scientists"),
            PrincipalKind::Group
        );
    }

    #[test]
    fn names_are_one_path_segment() {
        let u = segment_url(
            Url::parse("http://h/api/2.1/unity-catalog/permissions/function/").unwrap(),
            "main.default.a b/c?d",
        );
        assert_eq!(
            u.path(),
            "/api/2.1/unity-catalog/permissions/function/main.default.a%20b%2Fc%3Fd"
        );
    }
}
