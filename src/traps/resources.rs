//! Which resource a notification comes from: the resource whose endpoint is the
//! datagram's source IP address.
//!
//! The resource keyspace is scanned into an index by IP address at most every
//! [`REFRESH`] (or [`MISS_REFRESH`] after a miss, so a device discovered a moment ago is
//! found), on the blocking pool: a trap storm costs lookups in a map, not scans of the
//! store. Endpoints that are host names are not resolved (a trap names no host); when
//! several resources share an address the one with the smallest resource id is taken.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::resource_manager::ResourceStore;

/// How old the index may get.
const REFRESH: Duration = Duration::from_secs(30);
/// How old the index may be when an address is not in it.
const MISS_REFRESH: Duration = Duration::from_secs(2);

pub struct ResourceIndex {
    store: ResourceStore,
    by_ip: HashMap<IpAddr, (String, Value)>,
    loaded: Option<Instant>,
}

impl ResourceIndex {
    pub fn new(store: ResourceStore) -> ResourceIndex {
        ResourceIndex {
            store,
            by_ip: HashMap::new(),
            loaded: None,
        }
    }

    /// The resource (as JSON, the resources topic's shape) at `ip`, if any.
    pub async fn lookup(&mut self, ip: IpAddr) -> Option<Value> {
        let ip = ip.to_canonical();
        let age = self.loaded.map_or(Duration::MAX, |at| at.elapsed());
        let found = self.by_ip.get(&ip).map(|(_, v)| v.clone());
        if age > REFRESH || (found.is_none() && age > MISS_REFRESH) {
            self.refresh().await;
            return self.by_ip.get(&ip).map(|(_, v)| v.clone());
        }
        found
    }

    async fn refresh(&mut self) {
        let store = self.store.clone();
        self.loaded = Some(Instant::now());
        let all = match tokio::task::spawn_blocking(move || store.all()).await {
            Ok(Ok(all)) => all,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "trap receiver: cannot read the resources; keeping the last index");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "trap receiver: reading the resources failed; keeping the last index");
                return;
            }
        };
        let mut by_ip: HashMap<IpAddr, (String, Value)> = HashMap::new();
        for resource in all {
            let Ok(ip) = resource.endpoint.trim().parse::<IpAddr>() else {
                continue;
            };
            let id = resource.id.as_str().to_owned();
            if by_ip.get(&ip).is_some_and(|(kept, _)| *kept <= id) {
                continue;
            }
            match serde_json::to_value(&resource) {
                Ok(value) => {
                    by_ip.insert(ip, (id, value));
                }
                Err(e) => {
                    tracing::warn!(resource = %id, error = %e, "trap receiver: resource not serializable")
                }
            }
        }
        self.by_ip = by_ip;
    }
}
