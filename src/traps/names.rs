//! Names of notifications: a small built-in table of the generic traps (SNMPv2-MIB
//! snmpTraps), and the hook through which a MIB module can name the rest.

use crate::snmp::Oid;

/// Names a notification OID (`linkDown` for 1.3.6.1.6.3.1.1.5.3).
///
/// The hook for MIB-based names: the receiver asks an `Arc<dyn TrapNames>` (see
/// [`super::TrapReceiver::start`]); a MIB module implements this trait and falls back to
/// [`WellKnown`] for what its MIBs do not define. `None` makes the event's `trap_name`
/// the dotted OID.
pub trait TrapNames: Send + Sync {
    fn name(&self, trap_oid: &Oid) -> Option<String>;

    /// A varbind OID's name (`IF-MIB::ifIndex.3`), when known.
    fn varbind_name(&self, _oid: &Oid) -> Option<String> {
        None
    }
}

/// Names from the node's MIBs (the built-in modules and `[mibs] dirs`): a notification's
/// object name (`linkDown`, `acmeSensorAlarm`), and each varbind's `MODULE::name.index`;
/// the generic traps keep their names without MIBs.
pub struct MibNames(pub std::sync::Arc<crate::mib::Mibs>);

impl TrapNames for MibNames {
    fn name(&self, trap_oid: &Oid) -> Option<String> {
        self.0
            .exact_name(trap_oid)
            .map(|(_, name)| name)
            .or_else(|| WellKnown.name(trap_oid))
    }

    fn varbind_name(&self, oid: &Oid) -> Option<String> {
        self.0.known_name(oid)
    }
}

/// The generic traps of RFC 3418 (snmpTraps.1 to .5), the only names known without MIBs.
/// egpNeighborLoss (snmpTraps.6, generic-trap 5) went with the EGP MIB and is not here.
#[derive(Debug, Default, Clone, Copy)]
pub struct WellKnown;

const SNMP_TRAPS: [u32; 9] = crate::snmp::notification::SNMP_TRAPS;
const NAMES: [&str; 5] = [
    "coldStart",
    "warmStart",
    "linkDown",
    "linkUp",
    "authenticationFailure",
];

impl TrapNames for WellKnown {
    fn name(&self, trap_oid: &Oid) -> Option<String> {
        match trap_oid.components().split_at_checked(SNMP_TRAPS.len()) {
            Some((prefix, [n @ 1..=5])) if prefix == SNMP_TRAPS => {
                NAMES.get(*n as usize - 1).map(|s| (*s).to_string())
            }
            _ => None,
        }
    }
}

/// The event's `trap_name`: the name `names` gives, else the dotted OID.
pub fn trap_name(names: &dyn TrapNames, trap_oid: &Oid) -> String {
    names.name(trap_oid).unwrap_or_else(|| trap_oid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(oid: &str) -> String {
        trap_name(&WellKnown, &oid.parse().unwrap())
    }

    #[test]
    fn mib_names_name_notifications_and_varbinds() {
        let names = MibNames(std::sync::Arc::new(crate::mib::Mibs::builtin()));
        let oid = |s: &str| s.parse::<Oid>().unwrap();
        assert_eq!(trap_name(&names, &oid("1.3.6.1.6.3.1.1.5.3")), "linkDown");
        assert_eq!(trap_name(&names, &oid("1.3.6.1.6.3.1.1.5.1")), "coldStart");
        assert_eq!(
            trap_name(&names, &oid("1.3.6.1.4.1.99999.0.1")),
            "1.3.6.1.4.1.99999.0.1"
        );
        assert_eq!(
            names.varbind_name(&oid("1.3.6.1.2.1.2.2.1.1.3")).as_deref(),
            Some("IF-MIB::ifIndex.3")
        );
        assert_eq!(
            names.varbind_name(&oid("1.3.6.1.2.1.2.2.1.8.3")).as_deref(),
            Some("IF-MIB::ifOperStatus.3")
        );
        // Under a named node, as net-snmp prints it.
        assert_eq!(
            names.varbind_name(&oid("1.3.6.1.4.1.99999.7")).as_deref(),
            Some("SNMPv2-SMI::enterprises.99999.7")
        );
    }

    #[test]
    fn generic_traps_have_names_and_the_rest_their_oid() {
        assert_eq!(name("1.3.6.1.6.3.1.1.5.1"), "coldStart");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.2"), "warmStart");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.3"), "linkDown");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.4"), "linkUp");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.5"), "authenticationFailure");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.6"), "1.3.6.1.6.3.1.1.5.6");
        assert_eq!(name("1.3.6.1.6.3.1.1.5.3.1"), "1.3.6.1.6.3.1.1.5.3.1");
        assert_eq!(name("1.3.6.1.4.1.8072.2.3.0.1"), "1.3.6.1.4.1.8072.2.3.0.1");
    }
}
