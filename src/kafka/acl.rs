//! Who may do what on the embedded broker.
//!
//! The node's own topics (`<site>-resources`, `<site>-processed` and its other processed
//! topics, the global topic) and its own consumer groups (`resource_manager_group`, the
//! InfluxDB sink's) are *protected*: a forged resource set there makes the node poll any
//! address with the site's SNMP community, forged points reach InfluxDB, and a forged
//! commit makes a stage skip or replay data. Writing to them over the wire (Produce,
//! CreateTopics, DeleteTopics; any group API or commit for the groups) needs a
//! `[[kafka.acl]]` entry for a *named* user, authenticated by SASL: never `*`, never
//! `ANONYMOUS`. The pipeline itself writes in process and is not subject to this.
//!
//! Everything else is allowed to every admitted principal for the operations in
//! `kafka.default_operations` (all three by default, so kcat and kafka-python work out
//! of the box on loopback), and to the principals the ACL entries name. Describing
//! (ApiVersions, Metadata, FindCoordinator, ListGroups, DescribeGroups, OffsetFetch) is
//! open to every principal the listener admitted.

use std::fmt;

use serde::Deserialize;

/// What an ACL entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Fetch and ListOffsets on topics; JoinGroup, SyncGroup, Heartbeat, LeaveGroup and
    /// OffsetCommit on groups.
    Consume,
    /// Produce (and InitProducerId, for idempotent producers).
    Produce,
    /// CreateTopics, DeleteTopics and auto-creation on topics; every group API and
    /// commit on the node's own groups.
    Admin,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Consume => "consume",
            Operation::Produce => "produce",
            Operation::Admin => "admin",
        })
    }
}

/// Who a connection acts for: the SASL user it authenticated as, or nobody in
/// particular on a listener without SASL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User(String),
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "ANONYMOUS",
            Principal::User(name) => name,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User:{}", self.name())
    }
}

/// A topic or group name pattern: the exact name, or a prefix when it ends in `*`
/// (`*` alone matches every name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern {
    text: String,
    prefix: bool,
}

impl Pattern {
    pub fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.starts_with(&self.text)
        } else {
            name == self.text
        }
    }
}

/// Why a `[[kafka.acl]]` pattern or principal is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The pattern, without its trailing `*` if it had one.
    #[error("pattern {0:?}: `*` may only end a pattern (a prefix)")]
    StarInside(String),
    #[error("an empty pattern matches nothing: use `*` for every name")]
    EmptyPattern,
    #[error("an empty principal: use a user name, `ANONYMOUS` or `*`")]
    EmptyPrincipal,
}

impl TryFrom<String> for Pattern {
    type Error = AclError;

    fn try_from(text: String) -> Result<Pattern, AclError> {
        let (text, prefix) = match text.strip_suffix('*') {
            Some(head) => (head.to_owned(), true),
            None => (text, false),
        };
        if text.contains('*') {
            return Err(AclError::StarInside(text));
        }
        if text.is_empty() && !prefix {
            return Err(AclError::EmptyPattern);
        }
        Ok(Pattern { text, prefix })
    }
}

/// Who an ACL entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Grantee {
    /// `*`: every principal the listener admitted, anonymous ones included.
    Anyone,
    /// `ANONYMOUS`: connections without SASL.
    Anonymous,
    /// A SASL user (`alice` or `User:alice`).
    User(String),
}

impl TryFrom<String> for Grantee {
    type Error = AclError;

    fn try_from(text: String) -> Result<Grantee, AclError> {
        let name = text.strip_prefix("User:").unwrap_or(&text).trim();
        Ok(match name {
            "" => return Err(AclError::EmptyPrincipal),
            "*" => Grantee::Anyone,
            "ANONYMOUS" => Grantee::Anonymous,
            user => Grantee::User(user.to_owned()),
        })
    }
}

impl Grantee {
    fn covers(&self, who: &Principal) -> bool {
        match (self, who) {
            (Grantee::Anyone, _) => true,
            (Grantee::Anonymous, Principal::Anonymous) => true,
            (Grantee::User(a), Principal::User(b)) => a == b,
            _ => false,
        }
    }

    /// Only an entry for a user by name may open a protected topic or group.
    fn is_named(&self) -> bool {
        matches!(self, Grantee::User(_))
    }
}

/// One `[[kafka.acl]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    pub principal: Grantee,
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub topics: Vec<Pattern>,
    #[serde(default)]
    pub groups: Vec<Pattern>,
}

/// What a request touches.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Topic(t) => write!(f, "topic {t:?}"),
            Resource::Group(g) => write!(f, "group {g:?}"),
        }
    }
}

/// Why a request was not authorized: what the client's error message and the log say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("{principal} may not {operation} on {resource}: it belongs to this node's pipeline, and only a user named in a [[kafka.acl]] entry allowing {operation} on it may")]
    Protected {
        principal: String,
        operation: Operation,
        resource: String,
    },
    #[error("{principal} may not {operation} on {resource}: kafka.default_operations does not include {operation} and no [[kafka.acl]] entry allows it")]
    NotAllowed {
        principal: String,
        operation: Operation,
        resource: String,
    },
}

/// Decides every request's authorization. Built once at start.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    pub acl: Vec<AclEntry>,
    pub default_operations: Vec<Operation>,
    pub protected_topics: Vec<String>,
    pub protected_groups: Vec<String>,
}

impl Authorizer {
    /// Everything open to everyone except the protected names (the defaults).
    pub fn open(protected_topics: Vec<String>, protected_groups: Vec<String>) -> Authorizer {
        Authorizer {
            acl: Vec::new(),
            default_operations: vec![Operation::Consume, Operation::Produce, Operation::Admin],
            protected_topics,
            protected_groups,
        }
    }

    pub fn is_protected_topic(&self, topic: &str) -> bool {
        self.protected_topics.iter().any(|t| t == topic)
    }

    /// Whether `who` may do `operation` on `resource`. On a protected group every group
    /// operation counts as `admin`.
    pub fn check(
        &self,
        who: &Principal,
        operation: Operation,
        resource: Resource<'_>,
    ) -> Result<(), Denied> {
        let (protected, operation) = match resource {
            Resource::Topic(t) => (
                operation != Operation::Consume && self.is_protected_topic(t),
                operation,
            ),
            Resource::Group(g) if self.protected_groups.iter().any(|p| p == g) => {
                (true, Operation::Admin)
            }
            Resource::Group(_) => (false, operation),
        };
        let granted = self.acl.iter().any(|entry| {
            (entry.principal.is_named() || !protected)
                && entry.principal.covers(who)
                && entry.operations.contains(&operation)
                && match resource {
                    Resource::Topic(t) => entry.topics.iter().any(|p| p.matches(t)),
                    Resource::Group(g) => entry.groups.iter().any(|p| p.matches(g)),
                }
        });
        if granted || (!protected && self.default_operations.contains(&operation)) {
            return Ok(());
        }
        let (principal, resource) = (who.to_string(), resource.to_string());
        Err(if protected {
            Denied::Protected {
                principal,
                operation,
                resource,
            }
        } else {
            Denied::NotAllowed {
                principal,
                operation,
                resource,
            }
        })
    }

    /// Whether `who` may produce to some topic (InitProducerId asks no topic).
    pub fn may_produce_somewhere(&self, who: &Principal) -> bool {
        self.default_operations.contains(&Operation::Produce)
            || self.acl.iter().any(|e| {
                e.principal.covers(who)
                    && e.operations.contains(&Operation::Produce)
                    && !e.topics.is_empty()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(principal: &str, ops: &[Operation], topics: &[&str], groups: &[&str]) -> AclEntry {
        AclEntry {
            principal: Grantee::try_from(principal.to_string()).unwrap(),
            operations: ops.to_vec(),
            topics: topics
                .iter()
                .map(|t| Pattern::try_from(t.to_string()).unwrap())
                .collect(),
            groups: groups
                .iter()
                .map(|g| Pattern::try_from(g.to_string()).unwrap())
                .collect(),
        }
    }

    fn authorizer() -> Authorizer {
        Authorizer::open(
            vec!["local-resources".into(), "local-processed".into()],
            vec!["resource_manager_group".into()],
        )
    }

    fn user(name: &str) -> Principal {
        Principal::User(name.into())
    }

    #[test]
    fn protected_topics_are_read_by_anyone_and_written_by_nobody_by_default() {
        let a = authorizer();
        let anon = Principal::Anonymous;
        assert_eq!(
            a.check(
                &anon,
                Operation::Consume,
                Resource::Topic("local-processed")
            ),
            Ok(())
        );
        let err = a
            .check(
                &anon,
                Operation::Produce,
                Resource::Topic("local-resources"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "User:ANONYMOUS may not produce on topic \"local-resources\": it belongs to this \
             node's pipeline, and only a user named in a [[kafka.acl]] entry allowing produce \
             on it may"
        );
        assert!(matches!(
            a.check(
                &user("bob"),
                Operation::Admin,
                Resource::Topic("local-processed")
            ),
            Err(Denied::Protected {
                operation: Operation::Admin,
                ..
            })
        ));
        assert_eq!(
            a.check(&anon, Operation::Produce, Resource::Topic("my-topic")),
            Ok(())
        );
        // A protected group: every group operation is admin.
        assert!(matches!(
            a.check(
                &anon,
                Operation::Consume,
                Resource::Group("resource_manager_group")
            ),
            Err(Denied::Protected {
                operation: Operation::Admin,
                ..
            })
        ));
        assert_eq!(
            a.check(&anon, Operation::Consume, Resource::Group("my-group")),
            Ok(())
        );
    }

    #[test]
    fn only_an_entry_naming_a_user_opens_a_protected_name() {
        let mut a = authorizer();
        a.acl = vec![
            entry("*", &[Operation::Produce], &["local-*"], &[]),
            entry("ANONYMOUS", &[Operation::Admin], &[], &["*"]),
            entry(
                "User:ingest",
                &[Operation::Produce],
                &["local-processed"],
                &[],
            ),
            entry(
                "ops",
                &[Operation::Admin],
                &["*"],
                &["resource_manager_group"],
            ),
        ];
        let ingest = user("ingest");
        assert_eq!(
            a.check(
                &ingest,
                Operation::Produce,
                Resource::Topic("local-processed")
            ),
            Ok(())
        );
        assert!(matches!(
            a.check(
                &ingest,
                Operation::Produce,
                Resource::Topic("local-resources")
            ),
            Err(Denied::Protected { .. })
        ));
        assert!(matches!(
            a.check(
                &user("other"),
                Operation::Produce,
                Resource::Topic("local-processed")
            ),
            Err(Denied::Protected { .. })
        ));
        // An entry for ANONYMOUS does not open a protected group.
        assert_eq!(
            a.check(
                &Principal::Anonymous,
                Operation::Consume,
                Resource::Group("resource_manager_group")
            )
            .unwrap_err()
            .to_string(),
            "User:ANONYMOUS may not admin on group \"resource_manager_group\": it belongs to \
             this node's pipeline, and only a user named in a [[kafka.acl]] entry allowing admin \
             on it may"
        );
        assert_eq!(
            a.check(
                &user("ops"),
                Operation::Consume,
                Resource::Group("resource_manager_group")
            ),
            Ok(())
        );
        assert_eq!(
            a.check(
                &user("ops"),
                Operation::Admin,
                Resource::Topic("local-resources")
            ),
            Ok(())
        );
    }

    #[test]
    fn without_default_operations_only_the_acl_allows() {
        let mut a = authorizer();
        a.default_operations = vec![Operation::Consume];
        a.acl = vec![entry("alice", &[Operation::Produce], &["metrics-*"], &[])];
        assert_eq!(
            a.check(
                &user("alice"),
                Operation::Produce,
                Resource::Topic("metrics-a")
            ),
            Ok(())
        );
        let err = a
            .check(&user("alice"), Operation::Produce, Resource::Topic("other"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "User:alice may not produce on topic \"other\": kafka.default_operations does not \
             include produce and no [[kafka.acl]] entry allows it"
        );
        assert!(a.may_produce_somewhere(&user("alice")));
        assert!(!a.may_produce_somewhere(&user("bob")));
        assert!(!a.may_produce_somewhere(&Principal::Anonymous));
    }

    #[test]
    fn patterns_are_exact_or_prefixes() {
        let p = |s: &str| Pattern::try_from(s.to_string());
        assert!(p("a*").unwrap().matches("abc"));
        assert!(!p("a*").unwrap().matches("ba"));
        assert!(p("*").unwrap().matches(""));
        assert!(p("abc").unwrap().matches("abc"));
        assert!(!p("abc").unwrap().matches("abcd"));
        assert_eq!(
            p("a*b").unwrap_err().to_string(),
            "pattern \"a*b\": `*` may only end a pattern (a prefix)"
        );
        assert_eq!(p("a*b*").unwrap_err(), AclError::StarInside("a*b".into()));
        assert_eq!(
            p("").unwrap_err().to_string(),
            "an empty pattern matches nothing: use `*` for every name"
        );
        assert_eq!(
            Grantee::try_from("User: ".to_string()),
            Err(AclError::EmptyPrincipal)
        );
        assert_eq!(
            Grantee::try_from("User:x".to_string()),
            Ok(Grantee::User("x".into()))
        );
    }
}
