//! The views, and how each is written in the URL's fragment, so every view
//! can be linked to and the browser's back button works.
//!
//! | fragment | view |
//! |---|---|
//! | `#/` | every machine with its counts |
//! | `#/machines/{name}` | one machine's graph |
//! | `#/jobs?machine=&state=&status=` | the job list |
//! | `#/jobs/{id}` | one job |

/// Which jobs the job list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this machine's jobs.
    pub machine: Option<String>,
    /// Only jobs in this state (by stored name).
    pub state: Option<String>,
    /// Only jobs with this lifecycle status.
    pub status: Option<String>,
}

impl Filter {
    /// The filter as query parameters (`machine=a&status=failed`), empty
    /// ones left out.
    pub fn query(&self) -> String {
        [
            ("machine", &self.machine),
            ("state", &self.state),
            ("status", &self.status),
        ]
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Every machine with its counts.
    Machines,
    /// One machine's graph, by name.
    Machine(String),
    /// The job list.
    Jobs(Filter),
    /// One job, by id.
    Job(String),
}

impl Route {
    /// The view a fragment names (`#` included or not); an unknown one is
    /// the machines view.
    pub fn parse(fragment: &str) -> Route {
        let fragment = fragment.trim_start_matches('#');
        let (path, query) = fragment.split_once('?').unwrap_or((fragment, ""));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["machines", name] if !name.is_empty() => Route::Machine(decode(name)),
            ["jobs", id] if !id.is_empty() => Route::Job(decode(id)),
            ["jobs"] => {
                let mut filter = Filter::default();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = Some(decode(value)).filter(|v| !v.is_empty());
                    match key {
                        "machine" => filter.machine = value,
                        "state" => filter.state = value,
                        "status" => filter.status = value,
                        _ => {}
                    }
                }
                Route::Jobs(filter)
            }
            _ => Route::Machines,
        }
    }

    /// The fragment naming this view, `#` included.
    pub fn fragment(&self) -> String {
        match self {
            Route::Machines => "#/".to_owned(),
            Route::Machine(name) => format!("#/machines/{}", encode(name)),
            Route::Jobs(filter) => {
                let query = filter.query();
                if query.is_empty() {
                    "#/jobs".to_owned()
                } else {
                    format!("#/jobs?{query}")
                }
            }
            Route::Job(id) => format!("#/jobs/{}", encode(id)),
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Undoes [`encode`] (and `+` as a space); a malformed escape is kept as
/// it is.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_round_trips_through_its_fragment() {
        let views = [
            Route::Machines,
            Route::Machine("order v2/β".into()),
            Route::Jobs(Filter::default()),
            Route::Jobs(Filter {
                machine: Some("order".into()),
                state: Some("Paid & Done".into()),
                status: Some("failed".into()),
            }),
            Route::Job("0190f0c4-0000-7000-8000-000000000001".into()),
        ];
        for view in views {
            assert_eq!(Route::parse(&view.fragment()), view);
        }
    }

    #[test]
    fn an_unknown_fragment_is_the_machines_view() {
        assert_eq!(Route::parse(""), Route::Machines);
        assert_eq!(Route::parse("#/nowhere/at/all"), Route::Machines);
    }

    #[test]
    fn a_malformed_escape_is_kept() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
