//! The rule pack's XML files read into plain structs, for the structural checks of
//! `tests/ossec_conf.rs`.
//!
//! This is deliberately not a model of OSSEC or Wazuh: what the engines answer for each
//! fixture is measured on real engines and recorded as data (`expected-alerts.tsv`). An
//! earlier model of the rule engine agreed with every wrong answer it was meant to catch. What
//! is left here checks only what can be read off the files themselves: well-formed XML, ids,
//! parents, the attributes and options the engines accept, and that the OSSEC and Wazuh copies
//! say the same thing.

use std::collections::HashSet;
use std::path::Path;

/// Which engine a file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Ossec,
    Wazuh,
}

impl Flavour {
    /// The event count at which a `frequency="n"` rule fires, as measured: OSSEC on the
    /// (n+2)th matching event, Wazuh (4.14, 3.13) on the nth.
    pub fn fires_at(self, frequency: u32) -> u32 {
        match self {
            Flavour::Ossec => frequency + 2,
            Flavour::Wazuh => frequency,
        }
    }

    /// The offset between this flavour's ids and OSSEC's.
    pub fn id_offset(self) -> u32 {
        match self {
            Flavour::Ossec => 0,
            Flavour::Wazuh => 100_000,
        }
    }

    /// The level at which a stock manager raises an alert (`log_alert_level`).
    pub fn alert_level(self) -> u32 {
        match self {
            Flavour::Ossec => 1,
            Flavour::Wazuh => 3,
        }
    }
}

/// Parses a file of several top-level elements (as OSSEC's are) and hands its root to `read`.
pub fn with_xml<T>(path: &Path, read: impl FnOnce(roxmltree::Node) -> T) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let wrapped = format!("<root>{text}</root>");
    let doc = roxmltree::Document::parse(&wrapped)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    read(doc.root_element())
}

fn child_text(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .map(|c| c.text().unwrap_or("").to_owned())
}

#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub id: u32,
    pub level: u32,
    /// `accuracy="0"`: tried after every sibling of normal accuracy.
    pub low_accuracy: bool,
    pub frequency: Option<u32>,
    pub timeframe: Option<u32>,
    pub ignore: Option<u32>,
    pub if_sid: Vec<u32>,
    pub if_matched_sid: Option<u32>,
    pub if_matched_group: Option<String>,
    pub matches: Option<String>,
    pub regex: Option<String>,
    pub decoded_as: Option<String>,
    pub same_source_ip: bool,
    pub same_field: Option<String>,
    /// The rule's own `<group>`, without the enclosing `<group name=...>`.
    pub groups: String,
    pub description: String,
    /// Every child element name, for the lint.
    pub elements: Vec<String>,
    /// Every attribute name, for the lint.
    pub attributes: Vec<String>,
}

/// Every `<rule>` of a rules file, in file order.
pub fn read_rules(path: &Path) -> Vec<Rule> {
    with_xml(path, |root| {
        root.descendants()
            .filter(|n| n.has_tag_name("rule"))
            .map(|n| {
                let attr = |name: &str| n.attribute(name).map(|v| v.parse::<u32>().unwrap());
                Rule {
                    id: attr("id").expect("rule without id"),
                    level: attr("level").expect("rule without level"),
                    low_accuracy: attr("accuracy") == Some(0),
                    frequency: attr("frequency"),
                    timeframe: attr("timeframe"),
                    ignore: attr("ignore"),
                    if_sid: child_text(n, "if_sid")
                        .map(|s| {
                            s.split([',', ' '])
                                .filter(|i| !i.is_empty())
                                .map(|i| i.parse().unwrap())
                                .collect()
                        })
                        .unwrap_or_default(),
                    if_matched_sid: child_text(n, "if_matched_sid").map(|s| s.parse().unwrap()),
                    if_matched_group: child_text(n, "if_matched_group"),
                    matches: child_text(n, "match"),
                    regex: child_text(n, "regex"),
                    decoded_as: child_text(n, "decoded_as"),
                    same_source_ip: n.children().any(|c| c.has_tag_name("same_source_ip")),
                    same_field: child_text(n, "same_field"),
                    groups: child_text(n, "group").unwrap_or_default(),
                    description: child_text(n, "description").unwrap_or_default(),
                    elements: n
                        .children()
                        .filter(|c| c.is_element())
                        .map(|c| c.tag_name().name().to_owned())
                        .collect(),
                    attributes: n.attributes().map(|a| a.name().to_owned()).collect(),
                }
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
pub struct Decoder {
    pub name: String,
    pub parent: Option<String>,
    pub kind: Option<String>,
    pub use_own_name: bool,
    pub prematch: Option<String>,
    pub prematch_offset: Option<String>,
    pub regex: Option<String>,
    pub order: Vec<String>,
    pub plugin: Option<String>,
    pub plugin_offset: Option<String>,
}

pub fn read_decoders(path: &Path) -> Vec<Decoder> {
    with_xml(path, |root| {
        root.children()
            .filter(|n| n.has_tag_name("decoder"))
            .map(|n| {
                let el = |name: &str| n.children().find(|c| c.has_tag_name(name));
                let text = |name: &str| el(name).map(|c| c.text().unwrap_or("").to_owned());
                let offset =
                    |name: &str| el(name).and_then(|c| c.attribute("offset").map(str::to_owned));
                Decoder {
                    name: n
                        .attribute("name")
                        .expect("decoder without name")
                        .to_owned(),
                    parent: text("parent"),
                    kind: text("type"),
                    use_own_name: text("use_own_name").as_deref() == Some("true"),
                    prematch: text("prematch"),
                    prematch_offset: offset("prematch"),
                    regex: text("regex"),
                    order: text("order")
                        .map(|o| o.split(',').map(|f| f.trim().to_owned()).collect())
                        .unwrap_or_default(),
                    plugin: text("plugin_decoder"),
                    plugin_offset: offset("plugin_decoder"),
                }
            })
            .collect()
    })
}

/// What would make an engine refuse or misread a rules file, or break the pack's own
/// conventions (ids, levels, groups).
pub fn lint_rules(flavour: Flavour, rules: &[Rule]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let elements: &[&str] = &[
        "if_sid",
        "if_matched_sid",
        "if_matched_group",
        "match",
        "regex",
        "decoded_as",
        "category",
        "description",
        "group",
        "same_source_ip",
    ];
    let attributes: &[&str] = &[
        "id",
        "level",
        "accuracy",
        "frequency",
        "timeframe",
        "ignore",
    ];
    for rule in rules {
        let id = rule.id;
        if !seen.insert(id) {
            problems.push(format!("rule {id} is defined twice"));
        }
        let ours = id - flavour.id_offset();
        if !(80_200..81_100).contains(&ours) {
            problems.push(format!("rule {id} is outside the pack's id range"));
        }
        if rule.level > 16 {
            problems.push(format!("rule {id} has level {} (0-16)", rule.level));
        }
        if rule.level != 0 && rule.level < flavour.alert_level() {
            problems.push(format!(
                "rule {id}: level {} raises no alert on a stock {flavour:?} manager",
                rule.level
            ));
        }
        if rule.description.trim().is_empty() {
            problems.push(format!("rule {id} has no description"));
        }
        if !rule.groups.is_empty() && !rule.groups.ends_with(',') {
            problems.push(format!("rule {id}: groups must end with ','"));
        }
        for element in &rule.elements {
            let known = elements.contains(&element.as_str())
                || (element == "same_field" && flavour == Flavour::Wazuh);
            if !known {
                problems.push(format!("rule {id}: <{element}> is not for {flavour:?}"));
            }
            if rule.elements.iter().filter(|e| *e == element).count() > 1 {
                problems.push(format!("rule {id}: <{element}> twice"));
            }
        }
        for attribute in &rule.attributes {
            if !attributes.contains(&attribute.as_str()) {
                problems.push(format!("rule {id}: attribute {attribute} is unknown"));
            }
        }
        for sid in rule.if_sid.iter().chain(rule.if_matched_sid.iter()) {
            let stock = flavour == Flavour::Wazuh && *sid == 530;
            if !stock && !rules.iter().any(|r| r.id == *sid) {
                problems.push(format!("rule {id}: parent {sid} does not exist"));
            }
        }
        let counts = rule.if_matched_sid.is_some() || rule.if_matched_group.is_some();
        if counts != rule.frequency.is_some()
            || rule.frequency.is_some() != rule.timeframe.is_some()
        {
            problems.push(format!(
                "rule {id}: frequency, timeframe and if_matched_* go together \
                 (a frequency with a plain if_sid is refused at load time)"
            ));
        }
        if let Some(group) = &rule.if_matched_group {
            if !rules
                .iter()
                .any(|r| r.groups.split(',').any(|g| g == group))
            {
                problems.push(format!("rule {id}: no rule is in group {group}"));
            }
        }
        if let Some(m) = &rule.matches {
            if m.split('|').any(str::is_empty) {
                problems.push(format!("rule {id}: empty alternative in <match>"));
            }
        }
    }
    problems
}

/// Every decoder block of ours: a child of the stock `ossec` decoder, typed `ossec` (a child
/// does not inherit its parent's type, and untyped events never reach the `ossec` rules).
pub fn lint_decoders(decoders: &[Decoder]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(first) = decoders.first() else {
        return vec!["no decoder".to_owned()];
    };
    if first.prematch.as_deref() != Some("output: 'aws-cloudtrail': ")
        || first.prematch_offset.as_deref() != Some("after_parent")
    {
        problems.push("the first decoder must prematch our alias after the parent's".to_owned());
    }
    for (i, d) in decoders.iter().enumerate() {
        let at = format!("decoder #{}", i + 1);
        if d.name != first.name || d.parent.as_deref() != Some("ossec") {
            problems.push(format!("{at}: must be {}, child of ossec", first.name));
        }
        if d.kind.as_deref() != Some("ossec") {
            problems.push(format!("{at}: needs <type>ossec</type>"));
        }
        if i > 0 && d.prematch.is_some() {
            problems.push(format!(
                "{at}: only the first of a chain may have a prematch"
            ));
        }
        if let Some(regex) = &d.regex {
            let groups = regex.matches('(').count();
            if groups != d.order.len() || regex.matches(')').count() != groups {
                problems.push(format!(
                    "{at}: {groups} captures but {} names",
                    d.order.len()
                ));
            }
        }
    }
    problems
}
