//! MIG's investigator permissions (`investigator.go`'s bits, plus `PermPlugin` for targeting
//! plugins) as one enum: a route names the permission it needs as a variant, so a misspelt name
//! does not compile, and names from administrators are parsed here or refused with the list.

use crate::error::{Error, Result};
use std::fmt;

/// Declares the permission enum from one table of (variant, MIG name, bit).
macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $bit:literal;)+) => {
        /// One of MIG's permission bits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u64)]
        pub enum Permission {
            $($(#[$doc])* $variant = $bit),+
        }

        impl Permission {
            /// Every permission, in bit order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            /// MIG's name (`PermManifestSign`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name),+
                }
            }
        }
    };
}

permissions! {
    Search = "PermSearch", 1;
    Action = "PermAction", 2;
    ActionCreate = "PermActionCreate", 4;
    Command = "PermCommand", 8;
    Agent = "PermAgent", 16;
    Dashboard = "PermDashboard", 32;
    Loader = "PermLoader", 64;
    LoaderStatus = "PermLoaderStatus", 128;
    LoaderExpect = "PermLoaderExpect", 256;
    LoaderKey = "PermLoaderKey", 512;
    LoaderNew = "PermLoaderNew", 1024;
    Manifest = "PermManifest", 2048;
    ManifestSign = "PermManifestSign", 4096;
    ManifestNew = "PermManifestNew", 8192;
    ManifestStatus = "PermManifestStatus", 16384;
    ManifestLoaders = "PermManifestLoaders", 32768;
    Investigator = "PermInvestigator", 65536;
    InvestigatorCreate = "PermInvestigatorCreate", 131072;
    InvestigatorUpdate = "PermInvestigatorUpdate", 262144;
    /// Not in MIG: upload and delete targeting plugins.
    Plugin = "PermPlugin", 524288;
}

impl Permission {
    /// The bit value.
    pub const fn bit(self) -> u64 {
        self as u64
    }

    /// The permission of MIG's name, if there is one.
    pub fn from_name(name: &str) -> Option<Permission> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// Every bit at once: what the "authentication disabled" caller holds.
    pub fn all_bits() -> u64 {
        Self::ALL.iter().fold(0, |m, p| m | p.bit())
    }

    /// The bits MIG itself had: `investigator.go`'s nineteen, `PermSearch` (1) through
    /// `PermInvestigatorUpdate` (1 << 18). A mask from MIG is cut to these, so that no bit MIG
    /// never gave (`PermPlugin`) comes in with it.
    pub const MIG_BITS: u64 = Permission::InvestigatorUpdate.bit() * 2 - 1;

    /// True when `mask` holds this bit.
    pub const fn granted_by(self, mask: u64) -> bool {
        mask & self.bit() != 0
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const fn bits(ps: &[Permission]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < ps.len() {
        m |= ps[i].bit();
        i += 1;
    }
    m
}

use Permission as P;

/// MIG's permission sets. `Default` is always applied, as MIG's `setperms` does.
pub const PERMISSION_SETS: &[(&str, u64)] = &[
    (
        "Default",
        bits(&[
            P::Search,
            P::Action,
            P::ActionCreate,
            P::Command,
            P::Agent,
            P::Dashboard,
        ]),
    ),
    (
        "PermManifest",
        bits(&[
            P::Manifest,
            P::ManifestSign,
            P::ManifestNew,
            P::ManifestStatus,
            P::ManifestLoaders,
        ]),
    ),
    (
        "PermLoader",
        bits(&[
            P::Loader,
            P::LoaderStatus,
            P::LoaderExpect,
            P::LoaderKey,
            P::LoaderNew,
        ]),
    ),
    (
        "PermAdmin",
        bits(&[
            P::Investigator,
            P::InvestigatorCreate,
            P::InvestigatorUpdate,
            P::Plugin,
        ]),
    ),
];

/// Parses a list of set or bit names (`PermAdmin,PermManifest,PermSearch`) into a bitmask that
/// always includes the `Default` set. A set name wins over the bit of the same name; an unknown
/// name is an error, never a bit that grants nothing.
pub fn parse_permissions<S: AsRef<str>>(names: &[S]) -> Result<u64> {
    let mut mask = PERMISSION_SETS[0].1;
    for n in names {
        let n = n.as_ref().trim();
        if n.is_empty() {
            continue;
        }
        let v = PERMISSION_SETS
            .iter()
            .find(|(s, _)| *s == n)
            .map(|(_, m)| *m)
            .or_else(|| Permission::from_name(n).map(Permission::bit))
            .ok_or_else(|| Error::Config(format!("unknown permission or set {n:?}")))?;
        mask |= v;
    }
    Ok(mask)
}

/// The names of the bits set in `mask`.
pub fn permission_names(mask: u64) -> Vec<String> {
    Permission::ALL
        .iter()
        .filter(|p| p.granted_by(mask))
        .map(|p| p.name().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_mig_s_and_distinct() {
        assert_eq!(Permission::Search.bit(), 1);
        assert_eq!(Permission::ManifestSign.bit(), 4096);
        assert_eq!(Permission::InvestigatorUpdate.bit(), 262_144);
        for (i, p) in Permission::ALL.iter().enumerate() {
            assert_eq!(p.bit(), 1 << i, "{p}");
            assert_eq!(Permission::from_name(p.name()), Some(*p));
        }
        assert_eq!(Permission::all_bits(), (1 << 20) - 1);
        assert_eq!(Permission::from_name("PermManifests"), None);
    }

    #[test]
    fn mig_bits_are_every_bit_but_the_plugin_one() {
        assert_eq!(
            Permission::MIG_BITS,
            Permission::all_bits() & !Permission::Plugin.bit()
        );
        assert_eq!(Permission::MIG_BITS.count_ones(), 19);
    }

    #[test]
    fn permission_sets_expand_and_default_is_always_there() {
        let m = parse_permissions(&["PermManifest"]).unwrap();
        assert!(Permission::Search.granted_by(m), "Search from Default");
        assert!(Permission::ManifestStatus.granted_by(m));
        assert!(!Permission::LoaderNew.granted_by(m));
        assert!(parse_permissions(&["PermManifests"]).is_err());
        let names = permission_names(parse_permissions(&["PermAdmin"]).unwrap());
        assert!(names.contains(&"PermInvestigatorCreate".to_string()));
    }
}
