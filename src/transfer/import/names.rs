//! The destination names of registered models: `--model-name-map SRC=DST`, `--uc-schema
//! CATALOG.SCHEMA`, and Unity Catalog's rules (three levels `catalog.schema.model`, kept in lower
//! case; no `.`, space, `/`, control character or DEL inside a level; at most 255 characters a
//! level).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::mlflow::api::registry::RegistryKind;

/// How registered models are named on the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelNames {
    /// Source name → destination name (`--model-name-map SRC=DST`).
    pub map: BTreeMap<String, String>,
    /// `CATALOG.SCHEMA` that models without a mapping go to, in Unity Catalog (`--uc-schema`).
    pub uc_schema: Option<String>,
}

/// The longest name of one level of a Unity Catalog name.
const MAX_LEVEL: usize = 255;

fn refused(c: char) -> bool {
    c == '.' || c == ' ' || c == '/' || c.is_ascii_control()
}

/// `name` as one level of a Unity Catalog name: lower case, refused characters replaced by `_`.
pub fn uc_level(name: &str) -> String {
    name.chars()
        .map(|c| if refused(c) { '_' } else { c })
        .collect::<String>()
        .to_lowercase()
}

/// Why `level` cannot be one level of a Unity Catalog name, if it cannot.
fn level_problem(level: &str) -> Option<String> {
    if level.is_empty() {
        return Some("an empty level".into());
    }
    if level.chars().count() > MAX_LEVEL {
        return Some(format!("a level longer than {MAX_LEVEL} characters"));
    }
    if let Some(c) = level.chars().find(|c| refused(*c)) {
        return Some(format!("{c:?} in level {level:?}"));
    }
    None
}

impl ModelNames {
    /// Names from `SRC=DST` pairs and an optional `CATALOG.SCHEMA`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a pair without `=` or with an empty side, a source mapped twice to
    /// different names, or a schema that is not two valid levels.
    pub fn parse(pairs: &[String], uc_schema: Option<&str>) -> Result<Self> {
        let mut map = BTreeMap::new();
        for p in pairs {
            let Some((src, dst)) = p.split_once('=') else {
                return Err(Error::Config(format!(
                    "--model-name-map {p:?}: expected SOURCE=DESTINATION"
                )));
            };
            if src.is_empty() || dst.is_empty() {
                return Err(Error::Config(format!(
                    "--model-name-map {p:?}: both names are needed (SOURCE=DESTINATION)"
                )));
            }
            if let Some(before) = map.insert(src.to_string(), dst.to_string())
                && before != dst
            {
                return Err(Error::Config(format!(
                    "--model-name-map maps {src:?} twice, to {before:?} and {dst:?}"
                )));
            }
        }
        if let Some(s) = uc_schema {
            let levels: Vec<&str> = s.split('.').collect();
            let problem = if levels.len() != 2 {
                Some("it is not two levels".to_string())
            } else {
                levels.iter().find_map(|l| level_problem(l))
            };
            if let Some(p) = problem {
                return Err(Error::Config(format!(
                    "--uc-schema {s:?}: expected CATALOG.SCHEMA ({p})"
                )));
            }
        }
        Ok(ModelNames {
            map,
            uc_schema: uc_schema.map(str::to_lowercase),
        })
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.uc_schema.is_none()
    }

    /// Checks that these names fit a destination whose registry is `kind`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for `--uc-schema` into a registry that is not Unity Catalog.
    pub fn check_registry(&self, kind: RegistryKind, server: &str) -> Result<()> {
        if self.uc_schema.is_some() && kind != RegistryKind::UnityCatalog {
            return Err(Error::Config(format!(
                "--uc-schema names a Unity Catalog schema, but the registry of {server} is not Unity Catalog (give a databricks-uc:// destination, or --model-name-map)"
            )));
        }
        Ok(())
    }

    /// The destination name of source model `src` in a registry of `kind`: `explicit` (a
    /// command's own option for its one model) first, then the map, then (into Unity Catalog)
    /// `--uc-schema`, else the source name. Into Unity Catalog the name is lower case and must
    /// have three valid levels.
    ///
    /// `--uc-schema` takes a Unity Catalog source name's last level (`main.dev.wine` →
    /// `CATALOG.SCHEMA.wine`), any other name whole, with the characters Unity Catalog refuses
    /// replaced by `_` (`Wine Quality/v2` → `CATALOG.SCHEMA.wine_quality_v2`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the model when its name cannot be a Unity Catalog name.
    pub fn destination(
        &self,
        src: &str,
        explicit: Option<&str>,
        kind: RegistryKind,
    ) -> Result<String> {
        let mapped = explicit.or(self.map.get(src).map(String::as_str));
        if kind != RegistryKind::UnityCatalog {
            return Ok(mapped.unwrap_or(src).to_string());
        }
        let name = match (mapped, &self.uc_schema) {
            (Some(m), _) => m.to_string(),
            (None, Some(schema)) => {
                let levels: Vec<&str> = src.split('.').collect();
                let model = if levels.len() == 3 && levels.iter().all(|l| !l.is_empty()) {
                    levels[2]
                } else {
                    src
                };
                format!("{schema}.{}", uc_level(model))
            }
            (None, None) => src.to_string(),
        };
        let levels: Vec<&str> = name.split('.').collect();
        let problem = if levels.len() != 3 {
            Some(format!(
                "Unity Catalog names have three levels, catalog.schema.model, and {name:?} has {}",
                levels.len()
            ))
        } else {
            levels
                .iter()
                .find_map(|l| level_problem(l))
                .map(|p| format!("{name:?} has {p}"))
        };
        if let Some(p) = problem {
            let how = if mapped.is_some() {
                "correct its mapping"
            } else {
                "map it with --model-name-map SOURCE=CATALOG.SCHEMA.MODEL, or give --uc-schema CATALOG.SCHEMA"
            };
            return Err(Error::Config(format!(
                "registered model {src:?} cannot go into Unity Catalog: {p} ({how})"
            )));
        }
        Ok(name.to_lowercase())
    }

    /// Checks every source model of `sources` at once, before anything is written: each has a
    /// valid destination name, and (into Unity Catalog, which keeps one model per lower-case
    /// name) no two land on the same one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the model, or both models of a collision.
    pub fn check_all(
        &self,
        sources: &[String],
        explicit: Option<&str>,
        kind: RegistryKind,
    ) -> Result<BTreeMap<String, String>> {
        let mut by_dst: BTreeMap<String, String> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for src in sources {
            let dst = self.destination(src, explicit, kind)?;
            if kind == RegistryKind::UnityCatalog {
                check_collision(&mut by_dst, &dst, src)?;
            }
            out.insert(src.clone(), dst);
        }
        Ok(out)
    }
}

/// Records that source model `src` goes to `dst`; an error naming both when another source
/// model went there already (Unity Catalog).
///
/// # Errors
///
/// [`Error::Config`] naming both models.
pub fn check_collision(by_dst: &mut BTreeMap<String, String>, dst: &str, src: &str) -> Result<()> {
    match by_dst.get(dst) {
        Some(other) if other != src => Err(Error::Config(format!(
            "registered models {other:?} and {src:?} would both become {dst:?} in Unity Catalog (which keeps names in lower case): map one of them elsewhere with --model-name-map SOURCE=CATALOG.SCHEMA.MODEL"
        ))),
        _ => {
            by_dst.insert(dst.to_string(), src.to_string());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UC: RegistryKind = RegistryKind::UnityCatalog;

    fn names(pairs: &[&str], schema: Option<&str>) -> ModelNames {
        let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
        ModelNames::parse(&pairs, schema).unwrap()
    }

    #[test]
    fn mappings_schemas_and_unity_catalog_rules() {
        let n = names(&["wine=Main.Prod.Wine_Model", "x=y"], Some("Main.Dev"));
        assert_eq!(
            n.destination("wine", None, UC).unwrap(),
            "main.prod.wine_model"
        );
        assert_eq!(
            n.destination("Wine Quality/v2", None, UC).unwrap(),
            "main.dev.wine_quality_v2"
        );
        assert_eq!(
            n.destination("other.team.churn", None, UC).unwrap(),
            "main.dev.churn"
        );
        assert_eq!(
            n.destination("a.b", None, UC).unwrap(),
            "main.dev.a_b",
            "not three levels: the whole name"
        );
        // The command's own name wins; outside Unity Catalog names are kept as they are.
        assert_eq!(n.destination("wine", Some("c.s.m"), UC).unwrap(), "c.s.m");
        assert_eq!(
            n.destination("wine", None, RegistryKind::Mlflow).unwrap(),
            "Main.Prod.Wine_Model"
        );
        assert_eq!(
            n.destination("Other", None, RegistryKind::DatabricksWorkspace)
                .unwrap(),
            "Other"
        );
        // A bad mapping is an error naming the model, not a silent repair.
        let e = n.destination("x", None, UC).unwrap_err().to_string();
        assert!(
            e.contains("\"x\"") && e.contains("three levels") && e.contains("mapping"),
            "{e}"
        );
        let bad = names(&["x=a.b c.d"], None);
        let e = bad.destination("x", None, UC).unwrap_err().to_string();
        assert!(e.contains("' '"), "{e}");
    }

    #[test]
    fn a_name_without_three_levels_is_refused_naming_the_model() {
        let n = ModelNames::default();
        let e = n.destination("wine", None, UC).unwrap_err().to_string();
        assert!(
            e.contains("registered model \"wine\"")
                && e.contains("--model-name-map")
                && e.contains("--uc-schema"),
            "{e}"
        );
        assert_eq!(
            n.destination("Main.Default.Wine", None, UC).unwrap(),
            "main.default.wine"
        );
    }

    #[test]
    fn two_models_on_one_lower_case_name_are_refused_naming_both() {
        let n = names(&[], Some("main.default"));
        let e = n
            .check_all(&["Wine".into(), "churn".into(), "wine".into()], None, UC)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"Wine\"") && e.contains("\"wine\"") && e.contains("main.default.wine"),
            "{e}"
        );
        // Elsewhere two names stay two names.
        let ok = n
            .check_all(&["Wine".into(), "wine".into()], None, RegistryKind::Mlflow)
            .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn options_are_checked() {
        for (pairs, schema, want) in [
            (vec!["nope"], None, "SOURCE=DESTINATION"),
            (vec!["a="], None, "both names"),
            (vec!["a=x", "a=y"], None, "twice"),
            (vec![], Some("main"), "CATALOG.SCHEMA"),
            (vec![], Some("main.de v"), "' '"),
        ] {
            let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
            let e = ModelNames::parse(&pairs, schema).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let n = names(&[], Some("main.default"));
        let e = n
            .check_registry(RegistryKind::Mlflow, "http://h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not Unity Catalog"), "{e}");
    }
}
