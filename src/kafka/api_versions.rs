//! ApiVersions: the served APIs and their version ranges (`versions::SUPPORTED`, plus
//! `versions::SASL` on a listener that authenticates).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

/// The answer, with `error_code` (UNSUPPORTED_VERSION when the client asked for a newer
/// ApiVersions than we serve: it then retries with one from the list).
pub fn answer(error_code: i16, sasl: bool) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error_code;
    let sasl_apis = if sasl { super::versions::SASL } else { &[] };
    let mut apis: Vec<_> = super::versions::SUPPORTED
        .iter()
        .chain(sasl_apis)
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = super::versions::advertised_min(*key, *min);
            v.max_version = *max;
            v
        })
        .collect();
    apis.sort_by_key(|v| v.api_key);
    r.api_keys = apis;
    r
}
