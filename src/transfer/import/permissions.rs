//! Permissions (format 1.2): what was granted on an experiment or a registered model on the
//! source, applied to its copy with `--import-permissions` when the destination keeps permissions
//! (a Databricks workspace).
//!
//! They are held until their unit's seal (a bit flipped in a principal's name must not grant
//! anything), then sent one principal per request, adding or updating (`PATCH`, never `PUT`,
//! which would drop the importer's own access). A principal the destination does not know is
//! reported and skipped; any other refusal fails the object. Between the workspace registry and
//! Unity Catalog, levels and privileges are mapped ([`privileges_for`], [`level_for`]).

use super::*;
use crate::mlflow::databricks::Registry;
use crate::mlflow::databricks::permissions::{
    AccessControl, AclObject, PrincipalKind, PrivilegeAssignment, is_unknown_principal,
};
use crate::transfer::map;

/// A principal the destination does not know: its permissions on an object were not applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingPrincipal {
    /// The object, e.g. `experiment 7 "/Users/ann/wine" (destination 12)`.
    pub object: String,
    /// `user`, `group`, `service_principal`, or empty for a Unity Catalog principal (which names
    /// no kind).
    pub principal_type: String,
    /// The user name, group name or application id.
    pub principal: String,
}

/// What the import knows of permissions: the experiment being read, and the permissions read in
/// the open unit, held until its seal.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The source id and name of the experiment unit being read.
    experiment: Option<(String, String)>,
    pending: Option<rec::Permissions>,
}

/// Unity Catalog privileges that give what a workspace-registry level gives, or `None` for a
/// level this does not know. `CAN_MANAGE` includes what `CAN_EDIT` allows, so it gets
/// `EXECUTE` and `APPLY_TAG` besides `MANAGE`. `USE_CATALOG` and `USE_SCHEMA` on the parents,
/// which a principal also needs to reach the model, are not granted (they open every model of
/// the schema).
pub fn privileges_for(level: &str) -> Option<&'static [&'static str]> {
    match level {
        "CAN_READ" => Some(&["EXECUTE"]),
        "CAN_EDIT" | "CAN_MANAGE_STAGING_VERSIONS" | "CAN_MANAGE_PRODUCTION_VERSIONS" => {
            Some(&["EXECUTE", "APPLY_TAG"])
        }
        "CAN_MANAGE" => Some(&["EXECUTE", "APPLY_TAG", "MANAGE"]),
        _ => None,
    }
}

/// The workspace-registry level that gives what Unity Catalog privileges give (the highest that
/// any of them gives), or `None` when none of them has a counterpart (`BROWSE`, say).
pub fn level_for(privileges: &[String]) -> Option<&'static str> {
    let has = |p: &str| privileges.iter().any(|x| x == p);
    if has("ALL_PRIVILEGES") || has("MANAGE") {
        Some("CAN_MANAGE")
    } else if has("APPLY_TAG") {
        Some("CAN_EDIT")
    } else if has("EXECUTE") {
        Some("CAN_READ")
    } else {
        None
    }
}

impl<D: Destination> Importer<'_, D> {
    /// An experiment record was read: its permissions, if any, follow.
    pub(super) fn note_experiment(&mut self, e: &rec::Experiment) {
        self.perms.experiment = Some((e.experiment_id.clone(), e.name.clone()));
        self.perms.pending = None;
    }

    /// Permissions of the open unit: held until its seal.
    pub(super) fn hold_permissions(&mut self, p: rec::Permissions) {
        self.perms.pending = Some(p);
    }

    /// At a unit's seal: applies the permissions held for it (an experiment's or the open
    /// registered model's).
    pub(super) async fn apply_permissions(&mut self, unit: &UnitId) -> Result<()> {
        let Some(p) = self.perms.pending.take() else {
            return Ok(());
        };
        let (target, context) = match (unit, &self.open) {
            (UnitId::Model(_), Open::Model { src, dst, .. }) => (
                Target::Model {
                    object: format!("registered model {:?} (destination {dst:?})", src.name),
                    name: dst.clone(),
                },
                // (The import names the model already.)
                "its permissions".to_string(),
            ),
            (UnitId::Experiment(id), _) => {
                let name = match &self.perms.experiment {
                    Some((eid, name)) if eid == id => name.clone(),
                    _ => String::new(),
                };
                let dst = self.dst_experiment(id, &format!("experiment {id}"))?;
                (
                    Target::Experiment {
                        object: format!("experiment {id} {name:?} (destination {dst})"),
                        id: dst.clone(),
                    },
                    format!("its permissions (destination experiment {dst})"),
                )
            }
            // A unit left out or skipped: nothing of it is written.
            _ => return Ok(()),
        };
        if !self.opts.permissions {
            self.report.permissions_left_out += p.entries();
            return Ok(());
        }
        let Some(registry) = self.client.permission_registry() else {
            self.report.permissions_not_kept += p.entries();
            return Ok(());
        };
        self.apply(target, registry, &p)
            .await
            .map_err(|e| e.within(context))
    }

    /// The experiment whose unit `next` seals, for messages (the import names other units by
    /// their open state).
    pub(super) fn sealing_experiment(&self, next: Option<&Record>) -> Option<String> {
        match (next, &self.perms.experiment) {
            (Some(Record::Sealed(s)), Some((id, name)))
                if s.unit == UnitId::Experiment(id.clone()) =>
            {
                Some(format!("experiment {id} {name:?}"))
            }
            _ => None,
        }
    }

    async fn apply(
        &mut self,
        target: Target,
        registry: Registry,
        p: &rec::Permissions,
    ) -> Result<()> {
        let acl = p
            .acl
            .iter()
            .map(map::access_control)
            .collect::<Result<Vec<_>>>()?;
        match target {
            Target::Experiment { object, id } => {
                let on = AclObject::Experiment(id);
                for e in &acl {
                    self.patch_one(&object, &on, e).await?;
                }
            }
            Target::Model { object, name } if registry == Registry::UnityCatalog => {
                for g in &p.grants {
                    self.grant_one(&object, &name, &map::grant(g)).await?;
                }
                for e in &acl {
                    let Some(privileges) = privileges_for(&e.level) else {
                        self.report.permissions_unmapped.push(format!(
                            "{object}: {} {:?} has level {}, which has no Unity Catalog privileges",
                            e.kind, e.principal, e.level
                        ));
                        continue;
                    };
                    let g = PrivilegeAssignment {
                        principal: e.principal.clone(),
                        privileges: privileges.iter().map(|s| s.to_string()).collect(),
                    };
                    self.grant_one(&object, &name, &g).await?;
                }
            }
            Target::Model { object, name } => {
                if acl.is_empty() && p.grants.is_empty() {
                    return Ok(());
                }
                let on = self.client.model_acl_object(&name).await?;
                for e in &acl {
                    self.patch_one(&object, &on, e).await?;
                }
                for g in &p.grants {
                    let Some(level) = level_for(&g.privileges) else {
                        self.report.permissions_unmapped.push(format!(
                            "{object}: {:?} has Unity Catalog privileges {}, none of which has a workspace registry level",
                            g.principal,
                            g.privileges.join(", ")
                        ));
                        continue;
                    };
                    self.patch_guessing_kind(&object, &on, &g.principal, level)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Sends one access control entry; a principal the destination does not know is reported.
    async fn patch_one(&mut self, object: &str, on: &AclObject, e: &AccessControl) -> Result<()> {
        match self.client.patch_acl(on, e).await {
            Ok(()) => {
                self.report.permissions_applied += 1;
                Ok(())
            }
            Err(err) if is_unknown_principal(&err) => {
                self.missing(object, e.kind.name(), &e.principal);
                Ok(())
            }
            Err(err) => Err(err.within(format!("{} {:?} {}", e.kind, e.principal, e.level))),
        }
    }

    /// Sends one Unity Catalog grant; a principal the destination does not know is reported.
    async fn grant_one(&mut self, object: &str, name: &str, g: &PrivilegeAssignment) -> Result<()> {
        match self.client.add_grant(name, g).await {
            Ok(()) => {
                self.report.permissions_applied += 1;
                Ok(())
            }
            Err(err) if is_unknown_principal(&err) => {
                self.missing(object, "", &g.principal);
                Ok(())
            }
            Err(err) => Err(err.within(format!("{:?} {}", g.principal, g.privileges.join(", ")))),
        }
    }

    /// A Unity Catalog principal into an access control list, which needs its kind: the likely
    /// kind first ([`PrincipalKind::guess`]), then the others while the workspace does not know
    /// the principal as that kind.
    async fn patch_guessing_kind(
        &mut self,
        object: &str,
        on: &AclObject,
        principal: &str,
        level: &str,
    ) -> Result<()> {
        let first = PrincipalKind::guess(principal);
        let kinds =
            std::iter::once(first).chain(PrincipalKind::ALL.into_iter().filter(|k| *k != first));
        for kind in kinds {
            let e = AccessControl {
                kind,
                principal: principal.to_string(),
                level: level.to_string(),
            };
            match self.client.patch_acl(on, &e).await {
                Ok(()) => {
                    self.report.permissions_applied += 1;
                    return Ok(());
                }
                Err(err) if is_unknown_principal(&err) => continue,
                Err(err) => return Err(err.within(format!("{kind} {principal:?} {level}"))),
            }
        }
        self.missing(object, "", principal);
        Ok(())
    }

    fn missing(&mut self, object: &str, kind: &str, principal: &str) {
        self.report.permissions_missing.push(MissingPrincipal {
            object: object.to_string(),
            principal_type: kind.to_string(),
            principal: principal.to_string(),
        });
    }
}

/// Where held permissions go.
enum Target {
    Experiment { object: String, id: String },
    Model { object: String, name: String },
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::format::WriterBuilder;
    use crate::format::model::{AclEntry, Grant, Permissions};
    use crate::transfer::archive_sink::ArchiveSink;
    use crate::transfer::archive_source::ArchiveSource;
    use crate::transfer::export::{ExportOptions, export_all};
    use crate::transfer::memory::MemoryServer;
    use PrincipalKind::{Group, ServicePrincipal as Sp, User};

    const SP: &str = "6f4e2a1b-0c3d-4e5f-8a9b-0c1d2e3f4a5b";

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entry(kind: PrincipalKind, principal: &str, level: &str) -> AccessControl {
        AccessControl {
            kind,
            principal: principal.into(),
            level: level.into(),
        }
    }

    fn acl(kind: &str, principal: &str, level: &str) -> AclEntry {
        AclEntry {
            principal_type: kind.into(),
            principal: principal.into(),
            level: level.into(),
        }
    }

    fn grant(principal: &str, privileges: &[&str]) -> Grant {
        Grant {
            principal: principal.into(),
            privileges: privileges.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// Workspace A: an experiment and a registered model, each with an access control list of a
    /// user, a group and a service principal.
    async fn workspace_a() -> MemoryServer {
        let a = MemoryServer::default();
        a.keep_permissions(
            Registry::Workspace,
            &[
                (User, "ann@example.com"),
                (Group, "data-scientists"),
                (Sp, SP),
            ],
        );
        let exp = a
            .create_experiment("/Users/ann@example.com/wine", &[])
            .await
            .unwrap();
        a.create_registered_model("wine", None, &[]).await.unwrap();
        for (on, level) in [
            (AclObject::Experiment(exp), "CAN_EDIT"),
            (
                a.model_acl_object("wine").await.unwrap(),
                "CAN_MANAGE_STAGING_VERSIONS",
            ),
        ] {
            for e in [
                entry(User, "ann@example.com", "CAN_MANAGE"),
                entry(Group, "data-scientists", level),
                entry(Sp, SP, "CAN_READ"),
            ] {
                a.patch_acl(&on, &e).await.unwrap();
            }
        }
        a
    }

    async fn export(src: &MemoryServer, permissions: bool) -> Vec<u8> {
        let out = Shared::default();
        let mut sink = ArchiveSink::start(out.clone(), WriterBuilder::new());
        let opts = ExportOptions {
            permissions,
            ..ExportOptions::default()
        };
        export_all(src, &mut sink, &opts).await.unwrap();
        sink.finish().await.unwrap();
        out.0.lock().unwrap().clone()
    }

    async fn import(
        dst: &MemoryServer,
        bytes: &[u8],
        permissions: bool,
    ) -> std::result::Result<ImportReport, Failed> {
        let opts = ImportOptions {
            permissions,
            ..ImportOptions::default()
        };
        import_archive(
            dst,
            ArchiveSource::start(Cursor::new(bytes.to_vec())),
            &opts,
        )
        .await
    }

    fn archive(models: &[(&str, Permissions)], experiment: Option<Permissions>) -> Vec<u8> {
        let mut w = WriterBuilder::new().build(Vec::new()).unwrap();
        w.begin_experiment(&rec::Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            lifecycle_stage: "active".into(),
            ..rec::Experiment::default()
        })
        .unwrap();
        if let Some(p) = experiment {
            w.permissions(&p).unwrap();
        }
        w.end_unit().unwrap();
        for (name, p) in models {
            w.begin_registered_model(&rec::RegisteredModel {
                name: name.to_string(),
                ..rec::RegisteredModel::default()
            })
            .unwrap();
            w.permissions(p).unwrap();
            w.end_unit().unwrap();
        }
        w.finish().unwrap().0
    }

    #[tokio::test]
    async fn direct_entries_travel_and_an_unknown_principal_is_reported_not_fatal() {
        let a = workspace_a().await;
        let bytes = export(&a, true).await;
        let summary = crate::format::ArchiveReader::new(&bytes[..])
            .unwrap()
            .verify()
            .unwrap();
        assert_eq!(summary.trailer.counts.permissions, 6);

        // B knows the user and the group, not the service principal.
        let b = MemoryServer::default();
        b.keep_permissions(
            Registry::Workspace,
            &[(User, "ann@example.com"), (Group, "data-scientists")],
        );
        let report = import(&b, &bytes, true).await.unwrap();
        assert_eq!(report.permissions_applied, 4);
        let missing: Vec<(&str, &str, &str)> = report
            .permissions_missing
            .iter()
            .map(|m| {
                (
                    m.object.as_str(),
                    m.principal_type.as_str(),
                    m.principal.as_str(),
                )
            })
            .collect();
        assert_eq!(
            missing,
            [
                (
                    "experiment 1 \"/Users/ann@example.com/wine\" (destination 1)",
                    "service_principal",
                    SP
                ),
                (
                    "registered model \"wine\" (destination \"wine\")",
                    "service_principal",
                    SP
                ),
            ]
        );
        let exp = AclObject::Experiment(report.experiments["1"].clone());
        assert_eq!(
            b.acl(&exp),
            [
                entry(User, "ann@example.com", "CAN_MANAGE"),
                entry(Group, "data-scientists", "CAN_EDIT")
            ]
        );
        let model = b.model_acl_object("wine").await.unwrap();
        assert_eq!(
            b.acl(&model)[1],
            entry(Group, "data-scientists", "CAN_MANAGE_STAGING_VERSIONS")
        );
        // One principal per request, added or updated: nothing else is sent.
        assert_eq!(
            b.log().iter().filter(|c| **c == "patch_acl").count(),
            6,
            "{:?}",
            b.log()
        );

        // Not asked for: counted, not applied.
        let c = MemoryServer::default();
        c.keep_permissions(Registry::Workspace, &[(User, "ann@example.com")]);
        let report = import(&c, &bytes, false).await.unwrap();
        assert_eq!(
            (report.permissions_applied, report.permissions_left_out),
            (0, 6)
        );
        assert!(c.acl(&AclObject::Experiment("1".into())).is_empty());
        // A destination without permissions: said, not applied.
        let report = import(&MemoryServer::default(), &bytes, true)
            .await
            .unwrap();
        assert_eq!(
            (report.permissions_applied, report.permissions_not_kept),
            (0, 6)
        );
        // Without --export-permissions, the archive holds none.
        let bare = export(&a, false).await;
        let summary = crate::format::ArchiveReader::new(&bare[..])
            .unwrap()
            .verify()
            .unwrap();
        assert_eq!(summary.trailer.counts.permissions, 0);
    }

    #[tokio::test]
    async fn levels_become_grants_in_unity_catalog_and_grants_levels_in_a_workspace_registry() {
        let from_workspace = Permissions {
            acl: vec![
                acl("user", "ann@example.com", "CAN_READ"),
                acl("group", "data-scientists", "CAN_MANAGE"),
                acl("user", "ann@example.com", "CAN_FLY"),
            ],
            grants: Vec::new(),
        };
        let from_uc = Permissions {
            acl: Vec::new(),
            grants: vec![
                grant("ann@example.com", &["EXECUTE"]),
                // A group named like an email: the user kind is tried first, then the group.
                grant("ops@example.com", &["EXECUTE", "APPLY_TAG"]),
                grant(SP, &["MANAGE"]),
                grant("someone", &["BROWSE"]),
                grant("nobody", &["EXECUTE"]),
            ],
        };
        let bytes = archive(&[("m.w", from_workspace), ("m.u", from_uc.clone())], None);
        let known = [
            (User, "ann@example.com"),
            (Group, "data-scientists"),
            (Group, "ops@example.com"),
            (Group, "someone"),
            (Sp, SP),
        ];
        let setup = |registry| async move {
            let d = MemoryServer::default();
            d.keep_permissions(registry, &known);
            d
        };

        let uc = setup(Registry::UnityCatalog).await;
        let report = import(&uc, &bytes, true).await.unwrap();
        assert_eq!(
            uc.grants("m.w"),
            [
                PrivilegeAssignment {
                    principal: "ann@example.com".into(),
                    privileges: vec!["EXECUTE".into()]
                },
                PrivilegeAssignment {
                    principal: "data-scientists".into(),
                    privileges: vec!["EXECUTE".into(), "APPLY_TAG".into(), "MANAGE".into()]
                },
            ]
        );
        assert_eq!(uc.grants("m.u").len(), 4, "{:?}", uc.grants("m.u"));
        assert_eq!(report.permissions_applied, 6);
        assert_eq!(report.permissions_missing.len(), 1);
        assert_eq!(report.permissions_missing[0].principal, "nobody");
        assert_eq!(report.permissions_unmapped.len(), 1);
        assert!(
            report.permissions_unmapped[0].contains("CAN_FLY"),
            "{report:?}"
        );

        let ws = setup(Registry::Workspace).await;
        let report = import(&ws, &archive(&[("m.u", from_uc)], None), true)
            .await
            .unwrap();
        assert_eq!(
            ws.acl(&AclObject::RegisteredModel("m.u".into())),
            [
                entry(User, "ann@example.com", "CAN_READ"),
                entry(Group, "ops@example.com", "CAN_EDIT"),
                entry(Sp, SP, "CAN_MANAGE"),
            ]
        );
        assert_eq!(
            report
                .permissions_missing
                .iter()
                .map(|m| (m.principal_type.as_str(), m.principal.as_str()))
                .collect::<Vec<_>>(),
            [("", "nobody")]
        );
        assert!(
            report
                .permissions_unmapped
                .iter()
                .any(|u| u.contains("BROWSE")),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_other_than_an_unknown_principal_fails_the_object() {
        let bytes = archive(
            &[],
            Some(Permissions {
                acl: vec![acl("user", "ann@example.com", "CAN_FLY")],
                grants: Vec::new(),
            }),
        );
        let d = MemoryServer::default();
        d.keep_permissions(Registry::Workspace, &[(User, "ann@example.com")]);
        let failed = import(&d, &bytes, true).await.unwrap_err();
        let text = failed.error.to_string();
        assert!(
            text.contains("experiment 1 \"e\", its permissions (destination experiment 1), user \"ann@example.com\" CAN_FLY")
                && text.contains("CAN_FLY")
                && text.contains("is not valid"),
            "{text}"
        );
        let model = Permissions {
            acl: vec![acl("user", "ann@example.com", "CAN_FLY")],
            grants: Vec::new(),
        };
        let failed = import(&d, &archive(&[("m", model)], None), true)
            .await
            .unwrap_err();
        let text = failed.error.to_string();
        assert!(
            text.starts_with(
                "registered model \"m\" (destination \"m\"), its permissions, user \"ann@example.com\" CAN_FLY: "
            ),
            "{text}"
        );
    }

    /// A bit flipped in a principal's name: the seal catches it before anything is granted, even
    /// when the name it became is a principal of the destination.
    #[tokio::test]
    async fn nothing_is_granted_before_the_unit_is_sealed() {
        let bytes = archive(
            &[],
            Some(Permissions {
                acl: vec![acl("user", "eva@example.com", "CAN_MANAGE")],
                grants: Vec::new(),
            }),
        );
        let mut tar = zstd::decode_all(&bytes[..]).unwrap();
        let at = tar
            .windows(15)
            .position(|w| w == b"eva@example.com")
            .unwrap();
        tar[at + 2] ^= 0x04; // eva -> eve
        let flipped = zstd::encode_all(&tar[..], 3).unwrap();
        let d = MemoryServer::default();
        d.keep_permissions(
            Registry::Workspace,
            &[(User, "eva@example.com"), (User, "eve@example.com")],
        );
        let failed = import(&d, &flipped, true).await.unwrap_err();
        assert!(
            failed.error.to_string().contains("CRC-32"),
            "{}",
            failed.error
        );
        let exp = d.experiment_by_name("e").await.unwrap().unwrap();
        assert!(d.acl(&AclObject::Experiment(exp.experiment_id)).is_empty());
        assert!(!d.log().contains(&"patch_acl"), "{:?}", d.log());
    }

    #[test]
    fn levels_and_privileges_map_both_ways() {
        assert_eq!(privileges_for("CAN_READ"), Some(&["EXECUTE"][..]));
        for l in [
            "CAN_EDIT",
            "CAN_MANAGE_STAGING_VERSIONS",
            "CAN_MANAGE_PRODUCTION_VERSIONS",
        ] {
            assert_eq!(privileges_for(l), Some(&["EXECUTE", "APPLY_TAG"][..]));
        }
        assert_eq!(
            privileges_for("CAN_MANAGE"),
            Some(&["EXECUTE", "APPLY_TAG", "MANAGE"][..])
        );
        assert_eq!(privileges_for("CAN_RUN"), None);
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(level_for(&p(&["EXECUTE"])), Some("CAN_READ"));
        assert_eq!(level_for(&p(&["EXECUTE", "APPLY_TAG"])), Some("CAN_EDIT"));
        assert_eq!(level_for(&p(&["MANAGE"])), Some("CAN_MANAGE"));
        assert_eq!(level_for(&p(&["ALL_PRIVILEGES"])), Some("CAN_MANAGE"));
        assert_eq!(level_for(&p(&["BROWSE"])), None);
        // Round trips keep the level.
        for l in ["CAN_READ", "CAN_EDIT", "CAN_MANAGE"] {
            assert_eq!(level_for(&p(privileges_for(l).unwrap())), Some(l));
        }
    }
}
