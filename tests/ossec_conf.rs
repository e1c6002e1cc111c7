//! The rule pack in `ossec-conf/` against what the binary really prints.
//!
//! What each fixture raises is not decided here: it was measured by running every fixture, as
//! the binary prints it, through a real OSSEC (`ossec-logtest`) and a real Wazuh 4.x
//! (`wazuh-analysisd`'s logtest), and recorded in `ossec-conf/tests/expected-alerts.tsv` with
//! the engine versions. These tests keep that record honest without an engine:
//!
//! - every fixture is stored as a CloudTrail log file on the local S3 server and collected by
//!   the real binary; the lines it prints (what an engine must be fed) are written to
//!   `target/tmp/ossec-conf-events/`, one file per fixture;
//! - the table carries a fingerprint of those lines and of the four decoder and rule files
//!   as they were when the engines answered. Change a rule, a decoder, a fixture or the
//!   output format and the fingerprint no longer matches: the test fails until the fixtures
//!   have been run through real engines again and the table updated (ossec-conf/README.md,
//!   "Changing the rules");
//! - the files are linted for what can be read off them without an engine (ids, parents,
//!   decoder types, levels a stock manager alerts on, the two copies saying the same thing).

mod rulepack;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rulepack::Flavour;
use serde_json::Value;
use support::{day, log_key, Trail};

/// The longest line OSSEC's logcollector keeps as one event (measured: a 5631-byte line
/// arrives as the line plus an empty event).
const OSSEC_LINE_LIMIT: usize = 5630;

fn conf(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ossec-conf")
        .join(path)
}

/// The rule pack's files, in the order the fingerprint reads them.
const PACK_FILES: [&str; 4] = [
    "ossec/aws-cloudtrail_decoders.xml",
    "ossec/aws-cloudtrail_rules.xml",
    "wazuh/aws-cloudtrail_decoders.xml",
    "wazuh/aws-cloudtrail_rules.xml",
];

/// One row of `expected-alerts.tsv`: what the real engines raised on the last event.
#[derive(Debug)]
struct Case {
    fixture: String,
    events: u32,
    ossec: u32,
    ossec_level: u32,
    wazuh: u32,
    wazuh_level: u32,
}

struct Table {
    cases: Vec<Case>,
    fingerprint: Option<String>,
}

fn table() -> Table {
    let text = std::fs::read_to_string(conf("tests/expected-alerts.tsv")).unwrap();
    let fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("# fingerprint: "))
        .map(|f| f.trim().to_owned());
    let cases = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                cols.len(),
                6,
                "expected-alerts.tsv: 6 tab-separated columns: {l}"
            );
            let num = |i: usize| {
                cols[i]
                    .parse::<u32>()
                    .unwrap_or_else(|e| panic!("{l}: {e}"))
            };
            Case {
                fixture: cols[0].to_owned(),
                events: num(1),
                ossec: num(2),
                ossec_level: num(3),
                wazuh: num(4),
                wazuh_level: num(5),
            }
        })
        .collect();
    Table { cases, fingerprint }
}

/// The collector's own status events: `status-NAME` rows are the line in
/// `tests/status/NAME.txt`, printed by the binary in a real failure (`tests/status.rs` checks
/// that it still prints them so).
fn status_fixture(name: &str) -> Option<String> {
    let name = name.strip_prefix("status-")?;
    let path = conf(&format!("tests/status/{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    Some(text.trim_end().to_owned())
}

fn fixture(name: &str) -> Value {
    let path = conf(&format!("tests/fixtures/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Collects every fixture through the binary and returns, for each row of the table, the
/// lines printed for its copies, in the order they must be sent to an engine.
fn collect_fixtures(cases: &[Case]) -> Vec<Vec<String>> {
    let trail = Trail::new("rule-pack");
    let mut wanted = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if status_fixture(&case.fixture).is_some() {
            wanted.push(Vec::new());
            continue;
        }
        let record = fixture(&case.fixture);
        let copies: Vec<Value> = (0..case.events)
            .map(|n| {
                let mut copy = record.clone();
                let id = format!("{}-{n}", record["eventID"].as_str().unwrap());
                copy["eventID"] = Value::String(id);
                copy
            })
            .collect();
        wanted.push(
            copies
                .iter()
                .map(|c| c["eventID"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
        );
        let account = record["recipientAccountId"].as_str().unwrap();
        let region = record["awsRegion"].as_str().unwrap();
        let hhmm = format!("{:02}{:02}", i / 60, i % 60);
        trail.put_log(&log_key("", None, account, region, &day(0), &hhmm), &copies);
    }
    let run = trail.run(&[]);
    run.expect_code(0);
    let printed: usize = cases
        .iter()
        .filter(|c| status_fixture(&c.fixture).is_none())
        .map(|c| c.events as usize)
        .sum();
    assert_eq!(
        run.lines.len(),
        printed,
        "every copy of every fixture, once"
    );
    let by_id: HashMap<String, String> = run
        .event_ids()
        .into_iter()
        .zip(run.lines.iter().cloned())
        .collect();
    wanted
        .into_iter()
        .zip(cases)
        .map(|(ids, case)| {
            if let Some(line) = status_fixture(&case.fixture) {
                return vec![line; case.events as usize];
            }
            ids.iter()
                .map(|id| {
                    by_id
                        .get(id)
                        .unwrap_or_else(|| panic!("{id} was not printed"))
                        .clone()
                })
                .collect()
        })
        .collect()
}

/// FNV-1a, 64 bits: a change detector for the table's fingerprint, not a security measure.
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn fingerprint(cases: &[Case], lines: &[Vec<String>]) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for file in PACK_FILES {
        fnv1a(&mut hash, &std::fs::read(conf(file)).unwrap());
        fnv1a(&mut hash, b"\0");
    }
    for (case, lines) in cases.iter().zip(lines) {
        fnv1a(&mut hash, case.fixture.as_bytes());
        fnv1a(&mut hash, b"\0");
        for line in lines {
            fnv1a(&mut hash, line.as_bytes());
            fnv1a(&mut hash, b"\n");
        }
    }
    format!("{hash:016x}")
}

#[test]
fn the_table_holds_the_engines_answers_for_these_files_and_lines() {
    let table = table();
    let lines = collect_fixtures(&table.cases);

    // What an engine must be fed: one file per fixture, each line as the binary printed it
    // (send each file in its own logtest session; frequency counts carry within a session).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ossec-conf-events");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (case, lines)) in table.cases.iter().zip(&lines).enumerate() {
        for line in lines {
            assert!(
                !line.trim().is_empty() && line.len() <= OSSEC_LINE_LIMIT,
                "{}: a line of {} bytes: empty, or over OSSEC's {OSSEC_LINE_LIMIT}",
                case.fixture,
                line.len()
            );
        }
        let file = dir.join(format!("{i:02}-{}.txt", case.fixture));
        std::fs::write(file, lines.join("\n") + "\n").unwrap();
    }

    let now = fingerprint(&table.cases, &lines);
    assert_eq!(
        table.fingerprint.as_deref(),
        Some(now.as_str()),
        "\nThe rule pack, a fixture or the binary's output changed since the real engines \
         answered for expected-alerts.tsv. Run every file of {} through a real OSSEC and a \
         real Wazuh 4.x (ossec-conf/README.md, \"Changing the rules\"), put their answers in \
         the table, and set its fingerprint line to: # fingerprint: {now}\n",
        dir.display()
    );
}

#[test]
fn the_files_are_well_formed_and_consistent() {
    let ossec = rulepack::read_rules(&conf("ossec/aws-cloudtrail_rules.xml"));
    let wazuh = rulepack::read_rules(&conf("wazuh/aws-cloudtrail_rules.xml"));
    let mut problems = rulepack::lint_rules(Flavour::Ossec, &ossec);
    problems.extend(rulepack::lint_rules(Flavour::Wazuh, &wazuh));
    let ossec_decoders = rulepack::read_decoders(&conf("ossec/aws-cloudtrail_decoders.xml"));
    let wazuh_decoders = rulepack::read_decoders(&conf("wazuh/aws-cloudtrail_decoders.xml"));
    problems.extend(rulepack::lint_decoders(&ossec_decoders));
    problems.extend(rulepack::lint_decoders(&wazuh_decoders));

    // Wazuh's copy: the same tree, ids + 100000, the same tests, groups and descriptions;
    // levels raised to the stock alert threshold; frequencies firing on the same event.
    let ids = |rules: &[rulepack::Rule], offset: u32| -> BTreeSet<u32> {
        rules.iter().map(|r| r.id - offset).collect()
    };
    if ids(&ossec, 0) != ids(&wazuh, 100_000) {
        problems.push("the OSSEC and Wazuh files define different rules".to_owned());
    }
    for o in &ossec {
        let Some(w) = wazuh.iter().find(|w| w.id == o.id + 100_000) else {
            continue;
        };
        let shifted: Vec<u32> = o.if_sid.iter().map(|s| s + 100_000).collect();
        let wazuh_level = match o.level {
            0 => 0,
            l => l.max(Flavour::Wazuh.alert_level()),
        };
        let same = w.level == wazuh_level
            && o.low_accuracy == w.low_accuracy
            && o.groups == w.groups
            && o.description == w.description
            && o.timeframe == w.timeframe
            && o.ignore == w.ignore
            && o.regex == w.regex
            && o.if_matched_sid.map(|s| s + 100_000) == w.if_matched_sid
            && o.if_matched_group == w.if_matched_group
            && o.same_source_ip == w.same_field.is_some()
            && (o.decoded_as.is_some() || (o.matches == w.matches && shifted == w.if_sid));
        if !same {
            problems.push(format!("rule {} differs between OSSEC and Wazuh", o.id));
        }
        if let (Some(of), Some(wf)) = (o.frequency, w.frequency) {
            if Flavour::Ossec.fires_at(of) != Flavour::Wazuh.fires_at(wf) {
                problems.push(format!(
                    "rule {}: OSSEC and Wazuh fire at different counts",
                    o.id
                ));
            }
        }
    }

    // OSSEC: a chain of same-named regex decoders keeping their own name (the root rule tests
    // decoded_as). Wazuh: one decoder handing the JSON to JSON_Decoder under the parent's
    // name, which stock rule 530 and so our root rule see.
    if ossec_decoders
        .iter()
        .any(|d| !d.use_own_name || d.plugin.is_some())
    {
        problems.push("OSSEC decoders: use_own_name, regexes, no plugin".to_owned());
    }
    let d = &wazuh_decoders[0];
    let good = wazuh_decoders.len() == 1
        && !d.use_own_name
        && d.plugin.as_deref() == Some("JSON_Decoder")
        && d.plugin_offset.as_deref() == Some("after_prematch");
    if !good {
        problems.push(format!(
            "the Wazuh decoder is not as ossec-facts.md says: {d:?}"
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_rule_has_a_fixture_and_the_table_agrees_with_the_files() {
    let cases = table().cases;
    let ossec = rulepack::read_rules(&conf("ossec/aws-cloudtrail_rules.xml"));
    let wazuh = rulepack::read_rules(&conf("wazuh/aws-cloudtrail_rules.xml"));
    let covered: BTreeSet<u32> = cases.iter().map(|c| c.ossec).collect();
    // A service rule (level 0, a child of the root) only routes; its children are covered.
    let routes = |r: &rulepack::Rule| r.level == 0 && r.if_sid == [80200];
    let missing: Vec<u32> = ossec
        .iter()
        .filter(|r| !covered.contains(&r.id) && !routes(r))
        .map(|r| r.id)
        .collect();
    assert!(missing.is_empty(), "rules without a fixture: {missing:?}");
    for case in &cases {
        let level = |rules: &[rulepack::Rule], id: u32| {
            rules
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("{}: rule {id} is in no file", case.fixture))
                .level
        };
        assert_eq!(
            (level(&ossec, case.ossec), level(&wazuh, case.wazuh)),
            (case.ossec_level, case.wazuh_level),
            "{}: the table's levels and the files' disagree",
            case.fixture
        );
    }
    let listed: BTreeSet<String> = cases.iter().map(|c| c.fixture.clone()).collect();
    for (dir, suffix, prefix) in [("fixtures", ".json", ""), ("status", ".txt", "status-")] {
        for entry in std::fs::read_dir(conf(&format!("tests/{dir}"))).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(suffix)
                .unwrap_or_else(|| panic!("tests/{dir}/ holds {suffix} files"));
            assert!(
                listed.contains(&format!("{prefix}{stem}")),
                "tests/{dir}/{name} is not in expected-alerts.tsv"
            );
        }
    }
}

#[test]
fn the_localfile_snippets_run_our_command_under_our_alias() {
    for file in ["ossec/ossec.conf", "wazuh/ossec.conf", "wazuh/agent.conf"] {
        rulepack::with_xml(&conf(file), |root| {
            let localfile = root
                .descendants()
                .find(|n| n.has_tag_name("localfile"))
                .unwrap_or_else(|| panic!("{file}: no <localfile>"));
            let text = |name: &str| {
                localfile
                    .children()
                    .find(|c| c.has_tag_name(name))
                    .and_then(|c| c.text())
                    .unwrap_or_else(|| panic!("{file}: no <{name}>"))
                    .trim()
                    .to_owned()
            };
            assert_eq!(text("log_format"), "command", "{file}");
            assert_eq!(text("alias"), "aws-cloudtrail", "{file}");
            let command = text("command");
            assert!(
                command.starts_with("/usr/bin/ossec-cloudtrail --bucket "),
                "{file}"
            );
            assert!(text("frequency").parse::<u32>().is_ok(), "{file}");
        });
    }
}
