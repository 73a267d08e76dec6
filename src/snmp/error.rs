//! What can go wrong talking to an agent. Every message names the target
//! (`host:port`), never the community.

use std::io;
use std::time::Duration;

use super::credentials::SecurityLevel;
use super::{Oid, SnmpVersion};

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// No answer within `timeout x (retries + 1)`; `after` is that total.
    #[error("SNMP request to {target} timed out after {after:?} with no answer")]
    Timeout { target: String, after: Duration },

    #[error("network error talking to SNMP agent {target}: {source}")]
    Network {
        target: String,
        #[source]
        source: io::Error,
    },

    #[error("invalid SNMP target address {target}: {reason}")]
    InvalidAddress { target: String, reason: String },

    #[error("SNMP protocol error from {target}: {detail}")]
    Protocol { target: String, detail: String },

    /// The agent answered with a non-zero error-status; `index` is 1-based
    /// (0 = the whole request), as on the wire.
    #[error(
        "SNMP agent {target} answered with error status {}({status}) at varbind {index}",
        error_status_name(*status)
    )]
    ErrorStatus {
        target: String,
        status: u32,
        index: u32,
    },

    #[error("walk of {root} on {target} returned more than {limit} rows; stopped")]
    WalkLimit {
        target: String,
        root: Oid,
        limit: usize,
    },

    #[error("walks on {target} returned more than {limit} bytes in one poll (stopped at {root}): a runaway agent")]
    WalkBytes {
        target: String,
        root: Oid,
        limit: usize,
    },

    #[error("SNMP {version} cannot be used with {target}: {reason}")]
    UnsupportedVersion {
        target: String,
        version: SnmpVersion,
        reason: String,
    },

    /// The poll's hard deadline passed before the answer came.
    #[error("SNMP poll of {target} ran past its deadline of {budget:?}")]
    Deadline { target: String, budget: Duration },

    #[error("SNMPv3 agent {target} does not know user {user:?} (usmStatsUnknownUserNames)")]
    UnknownUser { target: String, user: String },

    #[error(
        "SNMPv3 agent {target} rejected the authentication of user {user:?}: wrong \
         authentication protocol or passphrase (usmStatsWrongDigests)"
    )]
    WrongAuth { target: String, user: String },

    #[error(
        "SNMPv3 agent {target} cannot read the encrypted requests of user {user:?}: wrong \
         privacy protocol or passphrase (usmStatsDecryptionErrors, or it authenticates the \
         user and silently drops the requests it cannot decrypt)"
    )]
    WrongPriv { target: String, user: String },

    #[error("SNMPv3 agent {target} does not accept {level} for user {user:?} (usmStatsUnsupportedSecLevels)")]
    UnsupportedSecurityLevel {
        target: String,
        user: String,
        level: SecurityLevel,
    },

    /// Discovery found no engine ID, or the agent keeps saying it does not
    /// know the engine ID we learnt from it.
    #[error("SNMPv3 engine discovery with {target} failed: {detail}")]
    UnknownEngine { target: String, detail: String },

    #[error("SNMPv3 agent {target} keeps answering notInTimeWindow for user {user:?} after a time resync")]
    NotInTimeWindow { target: String, user: String },

    /// The target's settings cannot make a request (e.g. v3 without a user).
    #[error("SNMP target {target} is misconfigured: {detail}")]
    Config { target: String, detail: String },
}

/// RFC 3416 names of the error-status values.
pub fn error_status_name(status: u32) -> &'static str {
    const NAMES: [&str; 19] = [
        "noError",
        "tooBig",
        "noSuchName",
        "badValue",
        "readOnly",
        "genErr",
        "noAccess",
        "wrongType",
        "wrongLength",
        "wrongEncoding",
        "wrongValue",
        "noCreation",
        "inconsistentValue",
        "resourceUnavailable",
        "commitFailed",
        "undoFailed",
        "authorizationError",
        "notWritable",
        "inconsistentName",
    ];
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_target_and_status() {
        let e = SnmpError::ErrorStatus {
            target: "10.1.1.1:161".into(),
            status: 2,
            index: 3,
        };
        assert_eq!(
            e.to_string(),
            "SNMP agent 10.1.1.1:161 answered with error status noSuchName(2) at varbind 3"
        );
        assert_eq!(error_status_name(99), "unknown");
        let e = SnmpError::Timeout {
            target: "h:1161".into(),
            after: Duration::from_secs(2),
        };
        assert!(e.to_string().contains("h:1161"));
    }
}
