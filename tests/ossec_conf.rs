//! The rule pack in `ossec-conf/` against what the binary really prints.
//!
//! Every fixture of `ossec-conf/tests/fixtures/` is stored as a CloudTrail log file on the
//! local S3 server and collected by the real binary; each printed line becomes the event text
//! an OSSEC manager sees, and goes through a model of our decoders and rule tree
//! (`rulepack`). The verdict must be the rule and level that `expected-alerts.tsv` gives, for
//! OSSEC and for Wazuh, and the line must carry every text its rule path matches, within
//! OSSEC's line limit. The files themselves are linted for what would make a real engine
//! refuse them: malformed XML, duplicate or colliding ids, missing parents, unknown options.

mod rulepack;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rulepack::{Decoded, Flavour, RuleTree};
use serde_json::Value;
use support::{day, log_key, Trail};

/// OSSEC keeps at most this many bytes of a line; longer ones are split into two events.
const OSSEC_LINE_LIMIT: usize = 5631;
const EVENT_PREFIX: &str = "ossec: output: 'aws-cloudtrail': ";

fn conf(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ossec-conf")
        .join(path)
}

/// One row of `expected-alerts.tsv`.
#[derive(Debug)]
struct Case {
    fixture: String,
    events: u32,
    ossec: u32,
    wazuh: u32,
    level: u32,
}

fn cases() -> Vec<Case> {
    let table = std::fs::read_to_string(conf("tests/expected-alerts.tsv")).unwrap();
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                cols.len(),
                5,
                "expected-alerts.tsv: 5 tab-separated columns: {l}"
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
                wazuh: num(3),
                level: num(4),
            }
        })
        .collect()
}

fn fixture(name: &str) -> Value {
    let path = conf(&format!("tests/fixtures/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The acting identity as our OSSEC decoders name it (see the decoder file's header).
fn expected_user(record: &Value) -> Option<String> {
    let identity = &record["userIdentity"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match identity["type"].as_str()? {
        "IAMUser" => text(&identity["userName"]),
        "AssumedRole" => identity["arn"]
            .as_str()?
            .split_once("assumed-role/")
            .map(|(_, rest)| rest.to_owned()),
        "Root" => Some("Root".to_owned()),
        "AWSService" => text(&identity["invokedBy"]),
        _ => text(&identity["principalId"]),
    }
}

/// Collects every fixture through the binary and returns the line printed for each, by
/// fixture name (the last copy, for fixtures sent several times).
fn collect_fixtures(cases: &[Case]) -> HashMap<String, String> {
    let trail = Trail::new("rule-pack");
    let mut want = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let record = fixture(&case.fixture);
        let copies: Vec<Value> = (0..case.events)
            .map(|n| {
                let mut copy = record.clone();
                let id = format!("{}-{n}", record["eventID"].as_str().unwrap());
                copy["eventID"] = Value::String(id);
                copy
            })
            .collect();
        want.push((
            case.fixture.clone(),
            copies.last().unwrap()["eventID"].clone(),
        ));
        let account = record["recipientAccountId"].as_str().unwrap();
        let region = record["awsRegion"].as_str().unwrap();
        let hhmm = format!("{:02}{:02}", i / 60, i % 60);
        trail.put_log(&log_key("", None, account, region, &day(0), &hhmm), &copies);
    }
    let run = trail.run(&[]);
    run.expect_code(0);
    let by_id: HashMap<String, String> = run
        .event_ids()
        .into_iter()
        .zip(run.lines.iter().cloned())
        .collect();
    let printed: usize = cases.iter().map(|c| c.events as usize).sum();
    assert_eq!(
        run.lines.len(),
        printed,
        "every copy of every fixture, once"
    );
    want.into_iter()
        .map(|(name, id)| {
            let line = by_id
                .get(id.as_str().unwrap())
                .unwrap_or_else(|| panic!("{name} was not printed"))
                .clone();
            (name, line)
        })
        .collect()
}

#[test]
fn every_fixture_raises_its_rule_on_ossec_and_wazuh() {
    let cases = cases();
    let ossec = RuleTree {
        flavour: Flavour::Ossec,
        rules: rulepack::read_rules(&conf("ossec/aws-cloudtrail_rules.xml")),
    };
    let wazuh = RuleTree {
        flavour: Flavour::Wazuh,
        rules: rulepack::read_rules(&conf("wazuh/aws-cloudtrail_rules.xml")),
    };
    let decoders = rulepack::read_decoders(&conf("ossec/aws-cloudtrail_decoders.xml"));
    let wazuh_decoder = &rulepack::read_decoders(&conf("wazuh/aws-cloudtrail_decoders.xml"))[0];
    let lines = collect_fixtures(&cases);

    let mut failures = Vec::new();
    for case in &cases {
        let line = &lines[&case.fixture];
        let record: Value = serde_json::from_str(line).unwrap();
        let event = format!("{EVENT_PREFIX}{line}");
        assert!(
            line.len() <= OSSEC_LINE_LIMIT,
            "{}: {} bytes, over OSSEC's limit",
            case.fixture,
            line.len()
        );

        // OSSEC: our regex decoders, then the rule tree.
        let fields = rulepack::ossec_decode(&decoders, &event);
        assert!(
            fields.matched,
            "{}: our OSSEC decoder does not take it",
            case.fixture
        );
        check_ossec_fields(&case.fixture, &record, &fields);
        let decoded = Decoded {
            flavour: Flavour::Ossec,
            event: &event,
            decoded_as_ours: fields.matched,
            srcip: fields.statics.get("srcip").cloned(),
            json_fields: HashMap::new(),
        };
        let verdict = ossec.classify(&decoded, case.events);
        compare(
            &mut failures,
            "OSSEC",
            case,
            case.ossec,
            verdict.as_ref(),
            line,
        );

        // Wazuh: the JSON decoder after our prematch, then the rule tree.
        let prematch = wazuh_decoder.prematch.as_deref().unwrap();
        let json_at = event.find(prematch).expect("Wazuh prematch") + prematch.len();
        let json: Value = serde_json::from_str(&event[json_at..])
            .unwrap_or_else(|e| panic!("{}: Wazuh's JSON decoder would fail: {e}", case.fixture));
        let json_fields = json
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect();
        let decoded = Decoded {
            flavour: Flavour::Wazuh,
            event: &event,
            decoded_as_ours: false,
            srcip: None,
            json_fields,
        };
        let verdict = wazuh.classify(&decoded, case.events);
        compare(
            &mut failures,
            "Wazuh",
            case,
            case.wazuh,
            verdict.as_ref(),
            line,
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn compare(
    failures: &mut Vec<String>,
    engine: &str,
    case: &Case,
    id: u32,
    verdict: Option<&rulepack::Verdict>,
    line: &str,
) {
    let Some(verdict) = verdict else {
        failures.push(format!(
            "{engine}: {}: no rule of ours took it",
            case.fixture
        ));
        return;
    };
    if (verdict.id, verdict.level) != (id, case.level) {
        failures.push(format!(
            "{engine}: {}: raised {} level {}, the table says {} level {}",
            case.fixture, verdict.id, verdict.level, id, case.level
        ));
    }
    // The texts the rule path matched are in the printed line itself, not only in the prefix.
    for m in verdict
        .matched
        .iter()
        .filter(|m| !m.contains("'aws-cloudtrail'"))
    {
        if !rulepack::os_match(m, line) {
            failures.push(format!("{engine}: {}: line lacks {m:?}", case.fixture));
        }
    }
}

fn check_ossec_fields(name: &str, record: &Value, fields: &rulepack::OssecFields) {
    let text = |key: &str| record[key].as_str().map(str::to_owned);
    let stat = |key: &str| fields.statics.get(key).cloned();
    let dynamic = |key: &str| fields.dynamic.get(key).cloned();
    assert_eq!(stat("action"), text("eventName"), "{name}: action");
    let ip = text("sourceIPAddress").filter(|ip| !ip.contains(' '));
    assert_eq!(stat("srcip"), ip, "{name}: srcip");
    assert_eq!(stat("dstuser"), expected_user(record), "{name}: user");
    assert_eq!(stat("status"), text("errorCode"), "{name}: status");
    assert_eq!(stat("id"), text("eventID"), "{name}: id");
    assert_eq!(dynamic("aws.eventSource"), text("eventSource"), "{name}");
    assert_eq!(dynamic("aws.awsRegion"), text("awsRegion"), "{name}");
    assert_eq!(
        dynamic("aws.accountId"),
        text("recipientAccountId"),
        "{name}"
    );
}

#[test]
fn the_files_are_well_formed_and_consistent() {
    let ossec = rulepack::read_rules(&conf("ossec/aws-cloudtrail_rules.xml"));
    let wazuh = rulepack::read_rules(&conf("wazuh/aws-cloudtrail_rules.xml"));
    let mut problems = rulepack::lint_rules(Flavour::Ossec, &ossec);
    problems.extend(rulepack::lint_rules(Flavour::Wazuh, &wazuh));
    problems.extend(rulepack::lint_ossec_decoders(&rulepack::read_decoders(
        &conf("ossec/aws-cloudtrail_decoders.xml"),
    )));

    // Wazuh's copy: the same rules, ids + 100000, same levels, groups, tests and words,
    // except for how the root finds our events and how frequency is counted.
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
        let same = o.level == w.level
            && o.groups == w.groups
            && o.description == w.description
            && o.timeframe == w.timeframe
            && o.if_matched_sid.map(|s| s + 100_000) == w.if_matched_sid
            && o.if_matched_group == w.if_matched_group
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

    // The Wazuh decoder: a typed child of `ossec` handing the JSON to JSON_Decoder.
    let wazuh_decoders = rulepack::read_decoders(&conf("wazuh/aws-cloudtrail_decoders.xml"));
    let ossec_decoders = rulepack::read_decoders(&conf("ossec/aws-cloudtrail_decoders.xml"));
    let d = &wazuh_decoders[0];
    let good = wazuh_decoders.len() == 1
        && d.parent.as_deref() == Some("ossec")
        && d.kind.as_deref() == Some("ossec")
        && !d.use_own_name
        && d.prematch == ossec_decoders[0].prematch
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
fn every_rule_has_a_fixture_and_every_fixture_a_row() {
    let cases = cases();
    let covered: BTreeSet<u32> = cases.iter().map(|c| c.ossec).collect();
    let rules = rulepack::read_rules(&conf("ossec/aws-cloudtrail_rules.xml"));
    // A rule whose child holds unconditionally is never the last word: its child is.
    let passed_through = |id: u32| {
        rules
            .iter()
            .any(|c| c.if_sid.contains(&id) && RuleTree::is_unconditional(c))
    };
    let missing: Vec<u32> = rules
        .iter()
        .map(|r| r.id)
        .filter(|id| !covered.contains(id) && !passed_through(*id))
        .collect();
    assert!(missing.is_empty(), "rules without a fixture: {missing:?}");
    for case in &cases {
        assert_eq!(case.wazuh, case.ossec + 100_000, "{}", case.fixture);
        let rule = rules.iter().find(|r| r.id == case.ossec).unwrap();
        assert_eq!(
            rule.level, case.level,
            "{}: the table and the XML disagree",
            case.fixture
        );
    }
    let listed: BTreeSet<String> = cases.iter().map(|c| c.fixture.clone()).collect();
    for entry in std::fs::read_dir(conf("tests/fixtures")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let stem = name
            .strip_suffix(".json")
            .expect("fixtures are .json files");
        assert!(
            listed.contains(stem),
            "{name} is not in expected-alerts.tsv"
        );
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

#[test]
fn the_model_reads_os_match_and_os_regex_as_ossec_does() {
    // Table-driven checks of the emulation itself, from OSSEC's documented semantics.
    for (pattern, text, want) in [
        (
            "\"eventName\":\"RunInstances\"",
            "{\"eventName\":\"RunInstances\"}",
            true,
        ),
        (
            "\"eventName\":\"RunInstances\"",
            "{\"eventName\":\"RunInstancesX\"}",
            false,
        ),
        ("a|b", "xbx", true),
        ("^ossec: output: ", "ossec: output: 'x': y", true),
        ("^output", "ossec: output", false),
        ("CONSOLELOGIN", "consolelogin", true),
        ("end$", "the end", true),
    ] {
        assert_eq!(
            rulepack::os_match(pattern, text),
            want,
            "{pattern} on {text}"
        );
    }
    let lazy = regex::Regex::new(&rulepack::os_regex_to_rust(r#""a":"(\S+)""#)).unwrap();
    let caps = lazy.captures(r#"{"a":"one","b":"two"}"#).unwrap();
    assert_eq!(&caps[1], "one", "\\S+ stops at the first closing quote");
    let spaced = regex::Regex::new(&rulepack::os_regex_to_rust(r#""ip":"(\S+)""#)).unwrap();
    assert!(spaced.captures(r#"{"ip":"AWS Internal"}"#).is_none());
}
