//! Permissions in the in-memory server, as a Databricks workspace keeps them: access control
//! lists of experiments and workspace-registry models, Unity Catalog grants of models, and the
//! principals the workspace knows. A write naming a principal it does not know is refused as the
//! workspace refuses it (`Principal: UserName(x) does not exist`, `Could not find principal with
//! name x`), and so is a level it does not know.

use std::collections::{BTreeMap, BTreeSet};

use super::{MemoryServer, api, not_found};
use crate::error::Result;
use crate::mlflow::databricks::Registry;
use crate::mlflow::databricks::permissions::{
    AccessControl, AclObject, ObjectPermissions, PrincipalKind, PrivilegeAssignment,
};

/// The levels the in-memory workspace accepts.
const LEVELS: &[&str] = &[
    "CAN_READ",
    "CAN_EDIT",
    "CAN_MANAGE",
    "CAN_MANAGE_STAGING_VERSIONS",
    "CAN_MANAGE_PRODUCTION_VERSIONS",
];

#[derive(Debug)]
pub(super) struct Perms {
    registry: Registry,
    principals: BTreeSet<(PrincipalKind, String)>,
    acls: BTreeMap<String, Vec<AccessControl>>,
    grants: BTreeMap<String, Vec<PrivilegeAssignment>>,
}

fn key(object: &AclObject) -> String {
    match object {
        AclObject::Experiment(id) => format!("experiments/{id}"),
        AclObject::RegisteredModel(id) => format!("registered-models/{id}"),
    }
}

impl MemoryServer {
    /// Makes the server keep permissions as a Databricks workspace whose models are in
    /// `registry`, knowing `principals` (users, groups, service principals).
    pub fn keep_permissions(&self, registry: Registry, principals: &[(PrincipalKind, &str)]) {
        self.lock().perms = Some(Perms {
            registry,
            principals: principals
                .iter()
                .map(|(k, p)| (*k, p.to_string()))
                .collect(),
            acls: BTreeMap::new(),
            grants: BTreeMap::new(),
        });
    }

    /// An object's access control list (every entry: this server keeps no inherited ones).
    pub fn acl(&self, object: &AclObject) -> Vec<AccessControl> {
        let s = self.lock();
        s.perms
            .as_ref()
            .and_then(|p| p.acls.get(&key(object)).cloned())
            .unwrap_or_default()
    }

    /// A Unity Catalog model's grants.
    pub fn grants(&self, name: &str) -> Vec<PrivilegeAssignment> {
        let s = self.lock();
        s.perms
            .as_ref()
            .and_then(|p| p.grants.get(name).cloned())
            .unwrap_or_default()
    }

    /// The permissions the server keeps for an experiment (by id).
    pub(super) fn experiment_acl(&self, id: &str) -> Result<Option<ObjectPermissions>> {
        let s = self.call("experiment_permissions")?;
        Ok(s.perms.as_ref().map(|p| ObjectPermissions {
            acl: p
                .acls
                .get(&key(&AclObject::Experiment(id.into())))
                .cloned()
                .unwrap_or_default(),
            grants: Vec::new(),
        }))
    }

    /// The permissions the server keeps for a registered model (by name).
    pub(super) fn model_perms(&self, name: &str) -> Result<Option<ObjectPermissions>> {
        let s = self.call("model_permissions")?;
        Ok(s.perms.as_ref().map(|p| match p.registry {
            Registry::UnityCatalog => ObjectPermissions {
                acl: Vec::new(),
                grants: p.grants.get(name).cloned().unwrap_or_default(),
            },
            _ => ObjectPermissions {
                acl: p
                    .acls
                    .get(&key(&AclObject::RegisteredModel(name.into())))
                    .cloned()
                    .unwrap_or_default(),
                grants: Vec::new(),
            },
        }))
    }

    pub(super) fn registry(&self) -> Option<Registry> {
        self.lock().perms.as_ref().map(|p| p.registry)
    }

    /// A workspace-registry model's access control list object: the model's name stands for its
    /// Databricks id.
    pub(super) fn model_object(&self, name: &str) -> Result<AclObject> {
        let s = self.call("model_acl_object")?;
        if !s.models.contains_key(name) {
            return Err(not_found(format!("registered model {name:?}")));
        }
        Ok(AclObject::RegisteredModel(name.into()))
    }

    pub(super) fn patch(&self, object: &AclObject, e: &AccessControl) -> Result<()> {
        let mut s = self.call("patch_acl")?;
        let exists = match object {
            AclObject::Experiment(id) => s.experiments.iter().any(|x| &x.experiment_id == id),
            AclObject::RegisteredModel(name) => s.models.contains_key(name),
        };
        if !exists {
            return Err(not_found(format!("{object}")));
        }
        let Some(p) = s.perms.as_mut() else {
            return Err(api(404, "ENDPOINT_NOT_FOUND", "no permissions".into()));
        };
        if !p.principals.contains(&(e.kind, e.principal.clone())) {
            let kind = match e.kind {
                PrincipalKind::User => "UserName",
                PrincipalKind::Group => "GroupName",
                PrincipalKind::ServicePrincipal => "ServicePrincipalName",
            };
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                format!("Principal: {kind}({}) does not exist", e.principal),
            ));
        }
        if !LEVELS.contains(&e.level.as_str()) {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                format!("Permission level {} is not valid", e.level),
            ));
        }
        let list = p.acls.entry(key(object)).or_default();
        match list
            .iter_mut()
            .find(|x| x.kind == e.kind && x.principal == e.principal)
        {
            Some(x) => x.level.clone_from(&e.level),
            None => list.push(e.clone()),
        }
        Ok(())
    }

    pub(super) fn grant(&self, name: &str, g: &PrivilegeAssignment) -> Result<()> {
        let mut s = self.call("add_grant")?;
        if !s.models.contains_key(name) {
            return Err(not_found(format!("registered model {name:?}")));
        }
        let Some(p) = s.perms.as_mut() else {
            return Err(api(404, "ENDPOINT_NOT_FOUND", "no permissions".into()));
        };
        if !p.principals.iter().any(|(_, n)| n == &g.principal) {
            return Err(api(
                400,
                "PRINCIPAL_DOES_NOT_EXIST",
                format!("Could not find principal with name {}", g.principal),
            ));
        }
        let list = p.grants.entry(name.to_string()).or_default();
        let at = match list.iter().position(|x| x.principal == g.principal) {
            Some(i) => i,
            None => {
                list.push(PrivilegeAssignment {
                    principal: g.principal.clone(),
                    privileges: Vec::new(),
                });
                list.len() - 1
            }
        };
        for priv_ in &g.privileges {
            if !list[at].privileges.contains(priv_) {
                list[at].privileges.push(priv_.clone());
            }
        }
        Ok(())
    }
}
