//! The standard modules users type most, built into the binary so that `IF-MIB::ifXTable`
//! works with no `[mibs] dirs`: the text of `resources/mibs/` (its README names where each
//! file comes from and under which licence). mib-rs adds its own copies of the SMI
//! foundation (RFC-1212, RFC-1215, RFC1065-SMI) as fallbacks.

/// `(module name, MIB text)`, the module names as the files' `DEFINITIONS` say.
pub const MODULES: &[(&str, &str)] = &[
    (
        "SNMPv2-SMI",
        include_str!("../../resources/mibs/SNMPv2-SMI.txt"),
    ),
    (
        "SNMPv2-TC",
        include_str!("../../resources/mibs/SNMPv2-TC.txt"),
    ),
    (
        "SNMPv2-CONF",
        include_str!("../../resources/mibs/SNMPv2-CONF.txt"),
    ),
    (
        "SNMPv2-MIB",
        include_str!("../../resources/mibs/SNMPv2-MIB.txt"),
    ),
    (
        "RFC1155-SMI",
        include_str!("../../resources/mibs/RFC1155-SMI.txt"),
    ),
    (
        "IANAifType-MIB",
        include_str!("../../resources/mibs/IANAifType-MIB.txt"),
    ),
    ("IF-MIB", include_str!("../../resources/mibs/IF-MIB.txt")),
];

/// The built-in modules as a mib-rs source (searched after the configured directories).
pub fn source() -> Box<dyn mib_rs::Source> {
    mib_rs::source::memory_modules(MODULES.iter().map(|(name, text)| (*name, text.as_bytes())))
}
