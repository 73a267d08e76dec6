//! The APIs the embedded broker serves and the versions of each it advertises.
//!
//! Clients pick the highest version both sides know, so only versions that are
//! implemented (and exercised by the client tests in `tests/kafka_*.rs`) are listed. The
//! floors are those of the `kafka-protocol` crate (Kafka 4.x: no v0/v1 message sets).

use kafka_protocol::messages::ApiKey;

/// `(api, min, max)` for every served API, in API-key order.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
];

/// The SASL APIs, served (and advertised) only by a listener with SASL: the handshake
/// v1 (v0: the bare tokens of KIP-43 that follow it) and its tokens in SaslAuthenticate.
pub const SASL: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The lowest version ApiVersions *advertises* for `api`. Produce is advertised from
/// v0 and Fetch from v2 although they are served from v3 and v4, for librdkafka before
/// 2.10 (Debian's kcat uses 2.0.2): it sends gzip, snappy and lz4 batches only to a
/// broker whose Produce range includes v0 (and reads its "MsgVer1" feature from Produce
/// v2 and Fetch v2); otherwise it quietly sends those codecs uncompressed. Clients pick
/// the highest version both sides know, so no client of the last eight years chooses
/// the old versions; a request that does gets UNSUPPORTED_VERSION.
pub fn advertised_min(api: ApiKey, served_min: i16) -> i16 {
    match api {
        ApiKey::Produce => 0,
        ApiKey::Fetch => 2,
        _ => served_min,
    }
}

/// Whether `version` of `api` is served (the SASL APIs only with `sasl`).
pub fn is_supported(api: ApiKey, version: i16, sasl: bool) -> bool {
    let sasl_apis = if sasl { SASL } else { &[] };
    SUPPORTED
        .iter()
        .chain(sasl_apis)
        .any(|(k, min, max)| *k == api && (*min..=*max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    /// Every advertised range lies inside what the crate can encode and decode.
    #[test]
    fn advertised_versions_are_within_the_crates_ranges() {
        for (api, min, max) in SUPPORTED.iter().chain(SASL) {
            let range = match api {
                ApiKey::Produce => ProduceRequest::VERSIONS,
                ApiKey::Fetch => FetchRequest::VERSIONS,
                ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
                ApiKey::Metadata => MetadataRequest::VERSIONS,
                ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
                ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
                ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
                ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
                ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
                ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
                ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
                ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
                ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
                ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
                ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
                ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
                ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
                ApiKey::SaslHandshake => SaslHandshakeRequest::VERSIONS,
                ApiKey::SaslAuthenticate => SaslAuthenticateRequest::VERSIONS,
                other => panic!("{other:?} has no range check"),
            };
            assert!(
                range.min <= *min && *max <= range.max,
                "{api:?} {min}..{max} vs {range}"
            );
        }
    }
}
