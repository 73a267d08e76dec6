//! SNMP credential profiles: named sets of credentials and timing in the secrets file, so
//! one node polls devices that use different communities, v3 users and SNMP versions.
//!
//! ```toml
//! [local.snmp_profiles.core]          # profile `core` of site `local`
//! version = "3"
//! v3_user = "monitor"
//! v3_auth_protocol = "SHA-256"
//! v3_auth_passphrase = "..."
//! v3_priv_protocol = "AES"
//! v3_priv_passphrase = "..."
//! v3_context = ""                     # optional
//! port = 161                          # optional: port, timeout and retries
//!
//! [default.snmp_profiles.legacy]      # any site without its own `legacy`
//! version = "1"
//! community = "..."
//! ```
//!
//! A resource names its profile in its metadata, `snmp_profile` (or the original's
//! `community_string_key`). The site's table is searched first, then `[default]`, as the
//! original falls back from `panoptes:secrets:<key>:<site>` to `...:default`. What a
//! profile leaves out comes from the `[snmp]` section.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::secret::Secret;
use crate::snmp::{Community, SnmpVersion, UserPartsError, UsmUser};

use super::SnmpSettings;

/// Resource metadata keys naming a profile, in the order they are read.
pub const PROFILE_KEYS: [&str; 2] = ["snmp_profile", "community_string_key"];

/// A profile as written in the secrets file; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub version: Option<String>,
    pub community: Option<Community>,
    pub v3_user: Option<String>,
    pub v3_auth_protocol: Option<String>,
    pub v3_auth_passphrase: Option<Secret>,
    pub v3_priv_protocol: Option<String>,
    pub v3_priv_passphrase: Option<Secret>,
    pub v3_context: Option<String>,
    pub port: Option<u16>,
    pub timeout: Option<u64>,
    pub retries: Option<u32>,
}

/// A checked profile: complete credentials; the timing keys it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpProfile {
    /// Where it was written: `[local.snmp_profiles.core]`.
    pub table: String,
    pub version: SnmpVersion,
    pub community: Community,
    pub usm: Option<UsmUser>,
    pub context: String,
    pub port: Option<u16>,
    pub timeout: Option<u64>,
    pub retries: Option<u32>,
}

/// The profiles a site's devices may name: the site's own over `[default]`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    by_name: BTreeMap<String, SnmpProfile>,
    /// The site whose table was searched first, for messages.
    site: String,
}

/// A resource names a profile that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "SNMP profile `{name}` (resource metadata `{key}`) is not in the secrets file: \
     neither [{site}.snmp_profiles.{name}] nor [default.snmp_profiles.{name}]{known}"
)]
pub struct UnknownProfile {
    pub name: String,
    pub key: &'static str,
    pub site: String,
    /// ", known: a, b" or nothing.
    known: String,
}

impl Profiles {
    /// Checks every profile of `site`'s and `default`'s tables against the `[snmp]`
    /// defaults `base`; every problem in one message per profile, secrets never shown.
    pub fn build(
        site: &str,
        own: Option<&BTreeMap<String, ProfileSpec>>,
        default: Option<&BTreeMap<String, ProfileSpec>>,
        base: &SnmpSettings,
    ) -> Result<Profiles, Vec<String>> {
        let mut by_name = BTreeMap::new();
        let mut problems = Vec::new();
        let tables = [("default", default), (site, own)];
        for (table_site, specs) in tables {
            for (name, spec) in specs.into_iter().flatten() {
                let table = format!("[{table_site}.snmp_profiles.{name}]");
                match check(&table, spec, base) {
                    // The site's own, read second, replaces the default's.
                    Ok(profile) => {
                        by_name.insert(name.clone(), profile);
                    }
                    Err(problem) => problems.push(format!("{table}: {problem}")),
                }
            }
        }
        match problems.is_empty() {
            true => Ok(Profiles {
                by_name,
                site: site.to_owned(),
            }),
            false => Err(problems),
        }
    }

    /// The profile a resource's metadata names: `Ok(None)` when it names none.
    pub fn for_metadata(
        &self,
        metadata: &crate::model::Metadata,
    ) -> Result<Option<&SnmpProfile>, UnknownProfile> {
        let Some((key, name)) = PROFILE_KEYS
            .iter()
            .find_map(|k| metadata.get(k).map(|v| (*k, v.trim())))
        else {
            return Ok(None);
        };
        match self.by_name.get(name) {
            Some(profile) => Ok(Some(profile)),
            None => {
                let mut known = String::new();
                for (i, n) in self.by_name.keys().enumerate() {
                    let _ = write!(known, "{}{n}", if i == 0 { ", known: " } else { ", " });
                }
                Err(UnknownProfile {
                    name: name.to_owned(),
                    key,
                    site: self.site.clone(),
                    known,
                })
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Names and where each was written.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_name
            .iter()
            .map(|(n, p)| (n.as_str(), p.table.as_str()))
    }
}

fn check<'a>(
    table: &str,
    spec: &'a ProfileSpec,
    base: &SnmpSettings,
) -> Result<SnmpProfile, String> {
    let mut problems: Vec<String> = Vec::new();
    let version = match &spec.version {
        // A profile with a v3 user and no version means v3.
        None if spec.v3_user.is_some() => SnmpVersion::V3,
        None => base.version,
        Some(v) => v.parse().unwrap_or_else(|e: crate::snmp::UnknownVersion| {
            problems.push(format!("version: {e}"));
            base.version
        }),
    };
    let mut usm = None;
    if version == SnmpVersion::V3 {
        match spec.v3_user.as_deref().map(str::trim) {
            None | Some("") => problems.push("v3_user must be set for version \"3\"".into()),
            Some(name) => {
                // A passphrase left out is empty, which the passphrase check refuses.
                let level = |protocol: &'a Option<String>, passphrase: &Option<Secret>| {
                    let protocol = protocol.as_deref().map(str::trim).unwrap_or_default();
                    (!protocol.is_empty())
                        .then(|| (protocol, Some(passphrase.clone().unwrap_or_default())))
                };
                let user = UsmUser::from_parts(
                    name,
                    level(&spec.v3_auth_protocol, &spec.v3_auth_passphrase),
                    level(&spec.v3_priv_protocol, &spec.v3_priv_passphrase),
                );
                match user {
                    Ok(user) => usm = Some(user),
                    Err(UserPartsError::AuthProtocol(e)) => {
                        problems.push(format!("v3_auth_protocol: {e}"))
                    }
                    Err(UserPartsError::PrivacyWithoutAuth) => problems.push(
                        "v3_priv_protocol: privacy needs authentication: set v3_auth_protocol too"
                            .into(),
                    ),
                    Err(UserPartsError::PrivProtocol(e)) => {
                        problems.push(format!("v3_priv_protocol: {e}"))
                    }
                    Err(other) => problems.push(other.to_string()),
                }
            }
        }
    } else {
        if spec.v3_user.is_some() {
            problems.push(format!(
                "v3_user is set but version is \"{version}\" (set version = \"3\", or drop v3_user)"
            ));
        }
        if spec.community.is_none() && version != base.version {
            // A v1 profile on a v2c site would silently send the site's community: say so.
            problems.push(format!(
                "community must be set for version \"{version}\" (the [snmp] community is for version \"{}\")",
                base.version
            ));
        }
    }
    if spec.timeout == Some(0) {
        problems.push("timeout must be at least 1 second".into());
    }
    if spec.port == Some(0) {
        problems.push("port must not be 0".into());
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(SnmpProfile {
        table: table.to_owned(),
        version,
        community: spec.community.clone().unwrap_or(base.community.clone()),
        usm,
        context: spec.v3_context.clone().unwrap_or_default(),
        port: spec.port,
        timeout: spec.timeout,
        retries: spec.retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SnmpSettings {
        let settings = crate::config::Settings::load(None).expect("the embedded defaults load");
        settings.snmp
    }

    fn specs(toml: &str) -> BTreeMap<String, ProfileSpec> {
        toml::from_str(toml).expect("test TOML parses")
    }

    #[test]
    fn the_sites_own_profile_wins_over_the_default_one() {
        let own = specs("[core]\ncommunity = \"site-core\"\n");
        let default =
            specs("[core]\ncommunity = \"default-core\"\n[edge]\ncommunity = \"default-edge\"\n");
        let p = Profiles::build("dc1", Some(&own), Some(&default), &base()).unwrap();
        let meta =
            |k: &str, v: &str| crate::model::Metadata::from_iter([(k.to_owned(), v.to_owned())]);
        let core = p
            .for_metadata(&meta("snmp_profile", "core"))
            .unwrap()
            .unwrap();
        assert_eq!(core.community.expose(), "site-core");
        assert_eq!(core.table, "[dc1.snmp_profiles.core]");
        let edge = p
            .for_metadata(&meta("community_string_key", "edge"))
            .unwrap()
            .unwrap();
        assert_eq!(edge.community.expose(), "default-edge");
        assert_eq!(edge.table, "[default.snmp_profiles.edge]");
        assert_eq!(p.for_metadata(&meta("model", "x")).unwrap(), None);
        let unknown = p.for_metadata(&meta("snmp_profile", "gone")).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "SNMP profile `gone` (resource metadata `snmp_profile`) is not in the secrets file: \
             neither [dc1.snmp_profiles.gone] nor [default.snmp_profiles.gone], known: core, edge"
        );
    }

    #[test]
    fn a_v3_profile_is_complete_and_keeps_its_timing() {
        let own = specs(
            "[secure]\nv3_user = \"monitor\"\nv3_auth_protocol = \"SHA-256\"\n\
             v3_auth_passphrase = \"authpass-123\"\nv3_priv_protocol = \"AES\"\n\
             v3_priv_passphrase = \"privpass-123\"\nv3_context = \"vrf-a\"\nport = 1161\ntimeout = 9\nretries = 3\n",
        );
        let p = Profiles::build("dc1", Some(&own), None, &base()).unwrap();
        let meta =
            crate::model::Metadata::from_iter([("snmp_profile".to_owned(), "secure".to_owned())]);
        let secure = p.for_metadata(&meta).unwrap().unwrap();
        assert_eq!(secure.version, SnmpVersion::V3);
        let user = secure.usm.as_ref().unwrap();
        assert_eq!(user.name, "monitor");
        assert_eq!(
            user.level(),
            crate::snmp::SecurityLevel::AuthPriv,
            "{user:?}"
        );
        assert_eq!(secure.context, "vrf-a");
        assert_eq!(
            (secure.port, secure.timeout, secure.retries),
            (Some(1161), Some(9), Some(3))
        );
    }

    #[test]
    fn every_problem_is_named_with_its_table_and_no_secret() {
        let own = specs(
            "[a]\nversion = \"4\"\n\
             [b]\nversion = \"3\"\n\
             [c]\nv3_user = \"u\"\nv3_priv_protocol = \"AES\"\nv3_priv_passphrase = \"hidden-priv-pass\"\n\
             [d]\nversion = \"1\"\n\
             [e]\nversion = \"2c\"\nv3_user = \"u\"\ncommunity = \"hidden-community\"\ntimeout = 0\n",
        );
        let problems = Profiles::build("dc1", Some(&own), None, &base()).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(
            problems[0].starts_with("[dc1.snmp_profiles.a]: version: "),
            "{}",
            problems[0]
        );
        assert_eq!(
            problems[1],
            "[dc1.snmp_profiles.b]: v3_user must be set for version \"3\""
        );
        assert_eq!(
            problems[2],
            "[dc1.snmp_profiles.c]: v3_priv_protocol: privacy needs authentication: set v3_auth_protocol too"
        );
        assert_eq!(
            problems[3],
            "[dc1.snmp_profiles.d]: community must be set for version \"v1\" (the [snmp] community is for version \"v2c\")"
        );
        assert_eq!(
            problems[4],
            "[dc1.snmp_profiles.e]: v3_user is set but version is \"v2c\" (set version = \"3\", or drop v3_user); timeout must be at least 1 second"
        );
        let all = problems.join("\n");
        assert!(!all.contains("hidden"), "{all}");
    }
}
