//! The reports of a validation run, written from its list of [`Check`]s:
//! the summary and overall status, the table for a terminal, the YAML/JSON
//! document, CTRF JSON (the format Go aicr writes) and JUnit XML. Same
//! checks, same bytes: times appear only when the run was asked to record
//! them ([`Report::times`]); otherwise CTRF's required `start`/`stop` are 0
//! and every duration is 0.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use super::{Check, Phase, Status};
use crate::serializer::{self, table};

/// The CTRF specification version written, as Go aicr v0.11.1 writes it.
pub const CTRF_SPEC_VERSION: &str = "0.0.1";

/// The `kind` of the YAML/JSON document.
pub const RESULT_KIND: &str = "ValidationResult";

/// A validation run: its checks in the order they ran, and when it ran
/// (only when asked for: `--timestamps`).
#[derive(Clone, Debug)]
pub struct Report {
    pub checks: Vec<Check>,
    pub times: Option<Times>,
}

/// When the run started and stopped.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    pub start: SystemTime,
    pub stop: SystemTime,
}

/// The overall status of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// Every check passed (also when there are none).
    Pass,
    /// At least one check failed.
    Fail,
    /// None failed, but some were skipped: not evaluated, so not proven.
    Partial,
}

impl Overall {
    pub fn name(self) -> &'static str {
        match self {
            Overall::Pass => "pass",
            Overall::Fail => "fail",
            Overall::Partial => "partial",
        }
    }
}

/// How many checks ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn of(checks: &[Check]) -> Summary {
        let mut s = Summary {
            tests: checks.len(),
            ..Summary::default()
        };
        for c in checks {
            match c.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Skipped => s.skipped += 1,
            }
        }
        s
    }

    pub fn overall(&self) -> Overall {
        if self.failed > 0 {
            Overall::Fail
        } else if self.skipped > 0 {
            Overall::Partial
        } else {
            Overall::Pass
        }
    }
}

impl Report {
    pub fn summary(&self) -> Summary {
        Summary::of(&self.checks)
    }

    /// A check's duration as reported: its own with times, else 0.
    fn duration(&self, c: &Check) -> Duration {
        if self.times.is_some() {
            c.duration
        } else {
            Duration::ZERO
        }
    }

    /// The document `-t yaml|json` writes.
    pub fn document(&self) -> Value {
        let summary = self.summary();
        let mut doc = json!({
            "kind": RESULT_KIND,
            "apiVersion": serializer::API_VERSION,
        });
        if let Some(t) = &self.times {
            doc["metadata"] = json!({
                "start": rfc3339(t.start),
                "stop": rfc3339(t.stop),
            });
        }
        doc["status"] = json!(summary.overall().name());
        doc["summary"] = serde_json::to_value(summary).expect("counts serialise");
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).expect("a check serialises");
                if self.times.is_some() {
                    v["durationMs"] = json!(millis(c.duration));
                }
                v
            })
            .collect();
        doc["checks"] = Value::Array(checks);
        doc
    }

    /// The table for a person: one row per check, then the summary line.
    pub fn table(&self) -> String {
        let mut rows = vec![["STATUS", "SUITE", "CHECK", "MESSAGE"]
            .map(String::from)
            .to_vec()];
        rows.extend(self.checks.iter().map(|c| {
            vec![
                status_name(c.status).to_string(),
                cell(&c.suite),
                cell(&c.name),
                cell(&c.message),
            ]
        }));
        let mut out = if self.checks.is_empty() {
            String::new()
        } else {
            table::render(&rows)
        };
        let s = self.summary();
        let _ = writeln!(
            out,
            "{} {}: {} passed, {} failed, {} skipped; status: {}",
            s.tests,
            if s.tests == 1 { "check" } else { "checks" },
            s.passed,
            s.failed,
            s.skipped,
            s.overall().name()
        );
        out
    }

    /// The CTRF JSON report (schema: ctrf.io), as Go aicr writes it:
    /// `suite` is the phase, then the component for a component's checks;
    /// the reason of a failure or a skip is the `message`.
    pub fn ctrf(&self) -> String {
        let s = self.summary();
        let (start, stop) = match &self.times {
            Some(t) => (epoch_millis(t.start), epoch_millis(t.stop)),
            None => (0, 0),
        };
        let tests: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let mut t = json!({
                    "name": c.name,
                    "status": status_name(c.status),
                    "duration": millis(self.duration(c)),
                    "suite": suite_path(c),
                });
                if !c.message.is_empty() {
                    t["message"] = json!(c.message);
                }
                if let Some(o) = &c.object {
                    t["extra"] = json!({ "object": o });
                }
                t
            })
            .collect();
        let mut doc = json!({
            "reportFormat": "CTRF",
            "specVersion": CTRF_SPEC_VERSION,
        });
        if let Some(t) = &self.times {
            doc["timestamp"] = json!(rfc3339(t.stop));
        }
        doc["generatedBy"] = json!("aicr");
        doc["results"] = json!({
            "tool": { "name": "aicr", "version": env!("CARGO_PKG_VERSION") },
            "summary": {
                "tests": s.tests,
                "passed": s.passed,
                "failed": s.failed,
                "skipped": s.skipped,
                "pending": 0,
                "other": 0,
                "start": start,
                "stop": stop,
            },
            "tests": tests,
        });
        serializer::to_json(&doc)
    }

    /// The JUnit XML report: one `<testsuite>` per suite (in the order the
    /// suites first appear), one `<testcase>` per check, `<failure>` and
    /// `<skipped>` with the reason as their `message`.
    pub fn junit(&self) -> String {
        let mut suites: Vec<(String, Vec<&Check>)> = Vec::new();
        for c in &self.checks {
            let name = suite_path(c).join("/");
            match suites.iter_mut().find(|(n, _)| *n == name) {
                Some((_, list)) => list.push(c),
                None => suites.push((name, vec![c])),
            }
        }
        let s = self.summary();
        let total: Duration = self.checks.iter().map(|c| self.duration(c)).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"aicr validate\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            s.tests,
            s.failed,
            s.skipped,
            seconds(total)
        );
        for (name, checks) in &suites {
            let owned: Vec<Check> = checks.iter().map(|c| (*c).clone()).collect();
            let ss = Summary::of(&owned);
            let time: Duration = checks.iter().map(|c| self.duration(c)).sum();
            let _ = write!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\"",
                attr(name),
                ss.tests,
                ss.failed,
                ss.skipped,
                seconds(time)
            );
            if let Some(t) = &self.times {
                let _ = write!(out, " timestamp=\"{}\"", rfc3339(t.start));
            }
            out.push_str(">\n");
            for c in checks {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                    attr(&c.name),
                    attr(name),
                    seconds(self.duration(c))
                );
                let detail = match &c.object {
                    Some(o) if !c.message.is_empty() => format!("{}\nobject: {o}", c.message),
                    Some(o) => format!("object: {o}"),
                    None => c.message.clone(),
                };
                match c.status {
                    Status::Passed if detail.is_empty() => out.push_str("/>\n"),
                    Status::Passed => {
                        let _ = write!(
                            out,
                            ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                            text(&detail)
                        );
                    }
                    Status::Failed => {
                        let _ = write!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"failed\">{}</failure>\n    </testcase>\n",
                            attr(&c.message),
                            text(&detail)
                        );
                    }
                    Status::Skipped => {
                        let _ = write!(
                            out,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                            attr(&c.message)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// CTRF's suite hierarchy: the phase, then the suite when it says more.
fn suite_path(c: &Check) -> Vec<String> {
    let phase = phase_name(c.phase);
    if c.suite.is_empty() || c.suite == phase {
        vec![phase.to_string()]
    } else {
        vec![phase.to_string(), c.suite.clone()]
    }
}

pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Constraints => "constraints",
        Phase::Deployment => "deployment",
    }
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn epoch_millis(t: SystemTime) -> u64 {
    millis(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A table cell: on one line, with control characters (a terminal escape
/// sequence in a hostile snapshot) shown as escapes rather than sent.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// XML 1.0 allows tab, line feed, carriage return and everything from
/// U+0020 except the surrogates, U+FFFE and U+FFFF; anything else cannot
/// appear even as a character reference, so it is written as a visible
/// `\u{..}` escape.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn xml_escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute values are normalised by parsers (a raw line
            // break becomes a space): kept as references. A raw carriage
            // return is normalised in text too.
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if !xml_allowed(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn attr(s: &str) -> String {
    xml_escape(s, true)
}

fn text(s: &str) -> String {
    xml_escape(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, status: Status, message: &str) -> Check {
        Check {
            name: name.into(),
            phase: Phase::Constraints,
            suite: "constraints".into(),
            status,
            message: message.into(),
            object: None,
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn overall_status_is_fail_then_partial_then_pass() {
        let p = check("a", Status::Passed, "");
        let f = check("b", Status::Failed, "x");
        let s = check("c", Status::Skipped, "y");
        assert_eq!(
            Summary::of(&[p.clone(), f, s.clone()]).overall(),
            Overall::Fail
        );
        assert_eq!(Summary::of(&[p.clone(), s]).overall(), Overall::Partial);
        assert_eq!(Summary::of(&[p]).overall(), Overall::Pass);
        assert_eq!(Summary::of(&[]).overall(), Overall::Pass);
    }

    #[test]
    fn xml_escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            attr("a<b>&\"c'\n\t\r\u{1b}[31m\u{0}\u{FFFE}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;&#13;\\u{1b}[31m\\u{0}\\u{fffe}é"
        );
        assert_eq!(text("x\ny\u{7}"), "x\ny\\u{7}");
    }

    #[test]
    fn junit_parses_with_one_testcase_per_check_even_with_hostile_text() {
        let hostile = "]]></failure><x a=\"1\"/>\u{1b}\u{0}&amp;";
        let r = Report {
            checks: vec![
                check(hostile, Status::Failed, hostile),
                check("ok", Status::Passed, ""),
                check("s", Status::Skipped, hostile),
            ],
            times: None,
        };
        let xml = r.junit();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 3);
        assert_eq!(
            cases[0].attribute("name"),
            Some("]]></failure><x a=\"1\"/>\\u{1b}\\u{0}&amp;")
        );
        assert!(xml.contains("time=\"0.000\""), "{xml}");
    }

    #[test]
    fn times_appear_only_when_recorded() {
        let mut r = Report {
            checks: vec![check("a", Status::Passed, "")],
            times: None,
        };
        let ctrf = r.ctrf();
        assert!(ctrf.contains("\"start\": 0"), "{ctrf}");
        assert!(!ctrf.contains("timestamp"), "{ctrf}");
        r.times = Some(Times {
            start: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            stop: UNIX_EPOCH + Duration::from_millis(1_700_000_002_500),
        });
        let ctrf = r.ctrf();
        assert!(ctrf.contains("\"start\": 1700000000000"), "{ctrf}");
        assert!(ctrf.contains("\"stop\": 1700000002500"), "{ctrf}");
        assert!(ctrf.contains("\"duration\": 1500"), "{ctrf}");
        assert!(
            ctrf.contains("\"timestamp\": \"2023-11-14T22:13:22.500Z\""),
            "{ctrf}"
        );
    }

    #[test]
    fn table_cells_never_carry_control_characters() {
        let r = Report {
            checks: vec![check("a", Status::Failed, "x\n\u{1b}[2Jy")],
            times: None,
        };
        let t = r.table();
        assert!(t.contains("x\\n\\u{1b}[2Jy"), "{t}");
        assert!(t.ends_with("1 check: 0 passed, 1 failed, 0 skipped; status: fail\n"));
    }
}
