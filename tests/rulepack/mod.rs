//! A model of the rule pack in `ossec-conf/`: its decoder and rule files read into plain
//! structs, and small emulations of how OSSEC and Wazuh apply them to one event.
//!
//! The emulation covers what our files use and nothing more: `<match>` (OS_Match: substring,
//! case-insensitive, `|` alternatives, `^`/`$` anchors), the rule tree (children tried in file
//! order, first match followed), frequency rules over `if_matched_sid`/`if_matched_group`, and
//! OSSEC's chained regex decoders with their positional dynamic fields. It is not OSSEC; the
//! structural checks (`lint_*`) catch what would make a real engine refuse the files.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use regex::Regex;

/// Which engine a file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Ossec,
    Wazuh,
}

impl Flavour {
    /// The event count at which a `frequency="n"` rule fires (checked on real engines: OSSEC
    /// counts two more than it says).
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

// ---------------------------------------------------------------------------------------------
// Rules

#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub id: u32,
    pub level: u32,
    pub frequency: Option<u32>,
    pub timeframe: Option<u32>,
    pub if_sid: Vec<u32>,
    pub if_matched_sid: Option<u32>,
    pub if_matched_group: Option<String>,
    pub matches: Option<String>,
    /// `<regex>`: OSSEC regex, which must hold as well as `<match>`.
    pub regex: Option<String>,
    pub decoded_as: Option<String>,
    pub category: Option<String>,
    pub same_source_ip: bool,
    pub same_field: Option<String>,
    /// The rule's own `<group>`, without the enclosing `<group name=...>`.
    pub groups: String,
    pub description: String,
    /// Every child element name, for the lint.
    pub elements: Vec<String>,
}

impl Rule {
    pub fn is_frequency(&self) -> bool {
        self.if_matched_sid.is_some() || self.if_matched_group.is_some()
    }
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
                    frequency: attr("frequency"),
                    timeframe: attr("timeframe"),
                    if_sid: child_text(n, "if_sid")
                        .map(|s| s.split(',').map(|i| i.trim().parse().unwrap()).collect())
                        .unwrap_or_default(),
                    if_matched_sid: child_text(n, "if_matched_sid").map(|s| s.parse().unwrap()),
                    if_matched_group: child_text(n, "if_matched_group"),
                    matches: child_text(n, "match"),
                    regex: child_text(n, "regex"),
                    decoded_as: child_text(n, "decoded_as"),
                    category: child_text(n, "category"),
                    same_source_ip: n.children().any(|c| c.has_tag_name("same_source_ip")),
                    same_field: child_text(n, "same_field"),
                    groups: child_text(n, "group").unwrap_or_default(),
                    description: child_text(n, "description").unwrap_or_default(),
                    elements: n
                        .children()
                        .filter(|c| c.is_element())
                        .map(|c| c.tag_name().name().to_owned())
                        .collect(),
                }
            })
            .collect()
    })
}

/// OS_Match: `|`-separated alternatives, each a case-insensitive substring, or a prefix with
/// `^`, or a suffix with `$`.
pub fn os_match(pattern: &str, text: &str) -> bool {
    let text = text.to_lowercase();
    pattern.split('|').any(|alt| {
        let alt = alt.to_lowercase();
        let (from_start, alt) = match alt.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, alt.as_str()),
        };
        let (to_end, alt) = match alt.strip_suffix('$') {
            Some(rest) => (true, rest),
            None => (false, alt),
        };
        match (from_start, to_end) {
            (true, true) => text == alt,
            (true, false) => text.starts_with(alt),
            (false, true) => text.ends_with(alt),
            (false, false) => text.contains(alt),
        }
    })
}

/// What a rule tree made of one event, or of `events` copies of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: u32,
    pub level: u32,
    /// Every `<match>` on the way from the root, in order.
    pub matched: Vec<String>,
}

/// What the engine decoded, as far as rules look at it.
pub struct Decoded<'a> {
    pub flavour: Flavour,
    pub event: &'a str,
    /// OSSEC: whether our decoder took the event (`decoded_as aws-cloudtrail`).
    pub decoded_as_ours: bool,
    pub srcip: Option<String>,
    /// Wazuh: JSON fields by path, as far as `same_field` needs them.
    pub json_fields: HashMap<String, String>,
}

pub struct RuleTree {
    pub flavour: Flavour,
    pub rules: Vec<Rule>,
}

impl RuleTree {
    pub fn get(&self, id: u32) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Stock rules our tree hangs off: Wazuh's 530 ("ossec: output").
    fn stock_holds(&self, id: u32, event: &str) -> bool {
        match (self.flavour, id) {
            (Flavour::Wazuh, 530) => os_match("^ossec: output: ", event),
            _ => panic!("rule {id} is neither ours nor a known stock parent"),
        }
    }

    fn holds(&self, rule: &Rule, d: &Decoded) -> bool {
        if let Some(category) = &rule.category {
            // Our OSSEC decoder is a child of `ossec`, whose type it keeps.
            if category != "ossec" {
                return false;
            }
        }
        if let Some(name) = &rule.decoded_as {
            if name != "aws-cloudtrail" || !d.decoded_as_ours {
                return false;
            }
        }
        let regex_holds = rule.regex.as_deref().is_none_or(|r| {
            Regex::new(&os_regex_to_rust(r))
                .expect("rule regex")
                .is_match(d.event)
        });
        regex_holds && rule.matches.as_deref().is_none_or(|m| os_match(m, d.event))
    }

    /// Whether a rule has no test of its own: it holds whenever its parent does.
    pub fn is_unconditional(rule: &Rule) -> bool {
        rule.matches.is_none() && rule.regex.is_none() && !rule.is_frequency()
    }

    fn roots(&self) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(|r| !r.is_frequency() && r.if_sid.iter().all(|sid| self.get(*sid).is_none()))
    }

    /// The children of a rule in the order the engine tries them: OSSEC (and Wazuh) insert
    /// each new child before the first sibling of a lower level, so higher levels come first
    /// and equal levels keep their file order.
    fn children(&self, id: u32) -> Vec<&Rule> {
        let mut children: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| !r.is_frequency() && r.if_sid.contains(&id))
            .collect();
        children.sort_by_key(|r| std::cmp::Reverse(r.level));
        children
    }

    /// The rule `events` identical events end on (the last one's verdict), or `None` when the
    /// event is not ours.
    pub fn classify(&self, d: &Decoded, events: u32) -> Option<Verdict> {
        let root = self.roots().find(|r| {
            r.if_sid.iter().all(|sid| self.stock_holds(*sid, d.event)) && self.holds(r, d)
        })?;
        let mut rule = root;
        let mut matched: Vec<String> = rule.matches.iter().cloned().collect();
        'descend: loop {
            for child in self.children(rule.id) {
                if self.holds(child, d) {
                    rule = child;
                    matched.extend(child.matches.iter().cloned());
                    matched.extend(child.regex.iter().cloned());
                    continue 'descend;
                }
            }
            break;
        }
        // A frequency rule hangs off the rule the single event lands on; it needs that rule
        // to raise an alert (level 0 events are not counted) and its own conditions.
        if rule.level > 0 {
            let frequency = self.rules.iter().find(|f| {
                f.if_matched_sid == Some(rule.id)
                    || f.if_matched_group
                        .as_deref()
                        .is_some_and(|g| rule.groups.split(',').any(|x| x == g))
            });
            if let Some(f) = frequency {
                let enough = events >= self.flavour.fires_at(f.frequency.expect("frequency"));
                let same_source = !f.same_source_ip || d.srcip.is_some();
                let same_field = f
                    .same_field
                    .as_ref()
                    .is_none_or(|name| d.json_fields.contains_key(name));
                if enough && same_source && same_field && self.holds(f, d) {
                    rule = f;
                }
            }
        }
        Some(Verdict {
            id: rule.id,
            level: rule.level,
            matched,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Decoders

#[derive(Debug, Clone, Default)]
pub struct Decoder {
    pub name: String,
    pub parent: Option<String>,
    pub kind: Option<String>,
    pub use_own_name: bool,
    pub prematch: Option<String>,
    pub prematch_offset: Option<String>,
    pub regex: Option<String>,
    pub regex_offset: Option<String>,
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
                    regex_offset: offset("regex"),
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

/// Fields OSSEC keeps in named slots; any other `<order>` name is a dynamic field.
const STATIC_FIELDS: [&str; 15] = [
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "protocol",
    "action",
    "id",
    "url",
    "data",
    "extra_data",
    "status",
    "system_name",
    "user",
    "dstuser",
    "srcuser",
];

/// Translates a classic OSSEC regex into an equivalent `regex` one. OSSEC's `+` and `*` stop
/// at the first place where the rest of the pattern can go on, which is what a lazy
/// quantifier does.
pub fn os_regex_to_rust(pattern: &str) -> String {
    let mut out = String::from("(?i)");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let class = match chars.next().expect("pattern ends in a backslash") {
                    'w' => r"[A-Za-z0-9_@\-]",
                    'd' => "[0-9]",
                    's' => " ",
                    'S' => r"[^ ]",
                    'W' => r"[^A-Za-z0-9_@\-]",
                    'D' => "[^0-9]",
                    '.' => ".",
                    'p' => r#"[()*+,\-.:;<=>?\[\]!"'#$%&|{}]"#,
                    't' => r"\t",
                    other => panic!("\\{other} is not classic OSSEC regex"),
                };
                out.push_str(class);
                if let Some(q @ ('+' | '*')) = chars.peek().copied() {
                    chars.next();
                    out.push(q);
                    out.push('?');
                }
            }
            '(' | ')' => out.push(c),
            '^' if out == "(?i)" => out.push('^'),
            '$' if chars.peek().is_none() => out.push('$'),
            '+' | '*' | '?' | '[' | ']' => {
                panic!("`{c}` in {pattern:?}: classic OSSEC regex only quantifies \\ classes")
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out
}

/// What OSSEC's chain of same-name decoders yields for one event.
#[derive(Debug, Default)]
pub struct OssecFields {
    pub matched: bool,
    pub statics: HashMap<String, String>,
    pub dynamic: HashMap<String, String>,
    /// Where the first decoder's prematch ended.
    pub after_prematch: usize,
}

/// Runs our decoders as OSSEC does: the first one's prematch selects the event, then every
/// decoder of the chain is tried on the whole event (the first after its prematch). Dynamic
/// fields are kept by position and named by the last decoder whose regex matched.
pub fn ossec_decode(decoders: &[Decoder], event: &str) -> OssecFields {
    let mut fields = OssecFields::default();
    let first = &decoders[0];
    let prematch = first
        .prematch
        .as_deref()
        .expect("the first decoder has a prematch");
    // After the parent's `^ossec: `.
    let Some(rest) = event.strip_prefix("ossec: ") else {
        return fields;
    };
    let Some(at) = rest.find(prematch) else {
        return fields;
    };
    fields.matched = true;
    fields.after_prematch = "ossec: ".len() + at + prematch.len();
    let mut positions: Vec<Option<String>> = vec![None; 32];
    let mut names: Vec<String> = Vec::new();
    for (i, decoder) in decoders.iter().enumerate() {
        let regex = Regex::new(&os_regex_to_rust(decoder.regex.as_deref().unwrap())).unwrap();
        let text = if i == 0 {
            &event[fields.after_prematch..]
        } else {
            event
        };
        let Some(caps) = regex.captures(text) else {
            continue;
        };
        for (k, name) in decoder.order.iter().enumerate() {
            let value = caps.get(k + 1).map(|m| m.as_str().to_owned()).unwrap();
            if STATIC_FIELDS.contains(&name.as_str()) {
                let slot = if name == "user" { "dstuser" } else { name };
                fields.statics.insert(slot.to_owned(), value);
            } else {
                positions[k] = Some(value);
            }
        }
        names = decoder.order.clone();
    }
    for (k, name) in names.iter().enumerate() {
        if !STATIC_FIELDS.contains(&name.as_str()) {
            if let Some(value) = &positions[k] {
                fields.dynamic.insert(name.clone(), value.clone());
            }
        }
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// Lints: what would make a real engine refuse or misread the files.

pub fn lint_rules(flavour: Flavour, rules: &[Rule]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let allowed: &[&str] = &[
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
    for rule in rules {
        let id = rule.id;
        if !seen.insert(id) {
            problems.push(format!("rule {id} is defined twice"));
        }
        let ours = id - flavour.id_offset();
        if !(70_000..100_000).contains(&ours) {
            problems.push(format!("rule {id} is outside our id range"));
        }
        if flavour == Flavour::Wazuh && (80_200..80_500).contains(&id) {
            problems.push(format!("rule {id} collides with Wazuh's own AWS rules"));
        }
        if rule.level > 16 {
            problems.push(format!("rule {id} has level {} (0-16)", rule.level));
        }
        if rule.description.trim().is_empty() {
            problems.push(format!("rule {id} has no description"));
        }
        if !rule.groups.is_empty() && !rule.groups.ends_with(',') {
            problems.push(format!("rule {id}: groups must end with ','"));
        }
        for element in &rule.elements {
            let known = allowed.contains(&element.as_str())
                || (element == "same_field" && flavour == Flavour::Wazuh);
            if !known {
                problems.push(format!("rule {id}: <{element}> is not for {flavour:?}"));
            }
            if rule.elements.iter().filter(|e| *e == element).count() > 1 {
                problems.push(format!("rule {id}: <{element}> twice"));
            }
        }
        for sid in rule.if_sid.iter().chain(rule.if_matched_sid.iter()) {
            let stock = flavour == Flavour::Wazuh && *sid == 530;
            if !stock && !rules.iter().any(|r| r.id == *sid) {
                problems.push(format!("rule {id}: parent {sid} does not exist"));
            }
        }
        if rule.is_frequency() != rule.frequency.is_some() {
            problems.push(format!("rule {id}: frequency and if_matched_* go together"));
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

pub fn lint_ossec_decoders(decoders: &[Decoder]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(first) = decoders.first() else {
        return vec!["no decoder".to_owned()];
    };
    if first.prematch.is_none() || first.regex.is_none() {
        problems.push("the first decoder needs a prematch and a regex".to_owned());
    }
    if first.prematch_offset.as_deref() != Some("after_parent") {
        problems.push("the prematch must test what follows the parent's".to_owned());
    }
    let mut dynamic_seen = false;
    for (i, d) in decoders.iter().enumerate() {
        let at = format!("decoder #{}", i + 1);
        if d.name != "aws-cloudtrail" || d.parent.as_deref() != Some("ossec") {
            problems.push(format!("{at}: must be aws-cloudtrail, child of ossec"));
        }
        if !d.use_own_name {
            problems.push(format!("{at}: needs use_own_name (rules test decoded_as)"));
        }
        if i > 0 && d.prematch.is_some() {
            problems.push(format!(
                "{at}: only the first of a chain may have a prematch"
            ));
        }
        if i > 0 && d.regex_offset.is_some() {
            problems.push(format!("{at}: chained regexes run on the whole event"));
        }
        let Some(regex) = &d.regex else {
            problems.push(format!("{at}: every decoder of the chain needs a regex"));
            continue;
        };
        let groups = regex.matches('(').count();
        if groups != d.order.len() || regex.matches(')').count() != groups {
            problems.push(format!(
                "{at}: {groups} captures but {} names",
                d.order.len()
            ));
        }
        let translated = std::panic::catch_unwind(|| os_regex_to_rust(regex));
        match translated {
            Ok(r) if Regex::new(&r).is_ok() => {}
            _ => problems.push(format!("{at}: {regex:?} is not classic OSSEC regex")),
        }
        // OSSEC keeps four places to go back to in one match; a `\.+` that must skip false
        // starts after those are used loses its place and the whole regex fails.
        let quantifiers: Vec<&str> = regex
            .match_indices(['+', '*'])
            .map(|(at, _)| &regex[at.saturating_sub(2)..at])
            .collect();
        if quantifiers.iter().skip(4).any(|class| *class == r"\.") {
            problems.push(format!(
                "{at}: a \\.+ after the 4th quantifier cannot backtrack"
            ));
        }
        let dynamic = d.order.iter().any(|f| !STATIC_FIELDS.contains(&f.as_str()));
        if dynamic_seen && !dynamic {
            problems.push(format!(
                "{at}: dynamic fields must come from the last decoders"
            ));
        }
        dynamic_seen |= dynamic;
    }
    problems
}
