//! [`JobId`]: a job's identity, unique across nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A job's identity: a UUID, version 7 (time-ordered, random tail) in normal
/// operation, or from a seeded sequence in deterministic mode. `Copy`,
/// displays and parses as the hyphenated UUID, serializes as that string.
/// Ordered as the UUID's bytes are.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
#[serde(transparent)]
pub struct JobId(Uuid);

// Compared and hashed as one `u128` (big-endian, so in the bytes' order)
// rather than byte by byte: ids are compared in every ordered index and
// hashed at every lookup.
impl PartialEq for JobId {
    fn eq(&self, other: &Self) -> bool {
        self.as_u128() == other.as_u128()
    }
}

impl Eq for JobId {}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JobId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_u128().cmp(&other.as_u128())
    }
}

impl std::hash::Hash for JobId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.as_u128());
    }
}

impl JobId {
    /// A fresh id: UUIDv7, unique across processes and machines.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// The id with this 128-bit value (deterministic ids, tests).
    pub const fn from_u128(value: u128) -> Self {
        JobId(Uuid::from_u128(value))
    }

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0.as_u128()
    }

    /// The id as a UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The id of a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        JobId(uuid)
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a job id; a job id is a UUID such as 0192b3c4-d5e6-7f80-9a1b-2c3d4e5f6a7b")]
pub struct ParseJobIdError {
    /// The rejected input.
    pub input: String,
}

impl FromStr for JobId {
    type Err = ParseJobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(JobId)
            .map_err(|_| ParseJobIdError { input: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let id = JobId::new();
        assert_eq!(id.to_string().parse::<JobId>(), Ok(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert!("nope".parse::<JobId>().unwrap_err().to_string().contains("`nope`"));
    }

    #[test]
    fn ids_compare_as_their_uuids_do() {
        let ids: Vec<JobId> = (0..200)
            .map(|i: u8| JobId(Uuid::from_u128((u128::from(i) << 120) | (u128::from(i) * 7919))))
            .chain((0..200).map(|_| JobId::new()))
            .collect();
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a} vs {b}");
                assert_eq!(a == b, a.0 == b.0);
            }
        }
    }

    #[test]
    fn fresh_ids_are_ordered_by_creation() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
    }
}
