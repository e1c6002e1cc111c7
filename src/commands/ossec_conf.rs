//! `ossec-conf`: the agent's `<localfile>` block that runs the collector with the flags given,
//! ready to paste into ossec.conf. `check` ends with the same block.

use std::path::PathBuf;

use crate::cli::{exit, AgentOptions, RunOptions, Target};

/// What the OSSEC rules pick the events out by (see ossec-conf/): never change it here alone.
const ALIAS: &str = "aws-cloudtrail";

pub fn run(target: &Target, run: &RunOptions, agent: &AgentOptions) -> u8 {
    match run.agent_flags() {
        Ok(extra) => {
            print!("{}", localfile_block(target, &extra, agent));
            exit::OK
        }
        Err(message) => {
            tracing::error!("{message}");
            exit::USAGE
        }
    }
}

/// The block, with the full path of this binary (the agent does not search PATH), the shared
/// flags and then `extra` words.
pub fn localfile_block(target: &Target, extra: &[String], agent: &AgentOptions) -> String {
    let program = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/ossec-cloudtrail"));
    let mut words = vec![program.display().to_string()];
    words.extend(target.agent_flags());
    if target
        .proxy
        .as_deref()
        .is_some_and(|url| crate::proxy::mask(url) != url)
    {
        tracing::warn!(
            "the proxy's user and password are masked as *** in the block below: every local \
             user can read a command line (ps), so rather than writing them in, give the agent \
             HTTPS_PROXY in its environment and leave --proxy out"
        );
    }
    words.extend(extra.iter().cloned());
    let command = words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<localfile>\n  <log_format>command</log_format>\n  <alias>{ALIAS}</alias>\n  \
         <command>{}</command>\n  <frequency>{}</frequency>\n</localfile>\n",
        xml_text(&command),
        agent.frequency
    )
}

/// The agent hands `<command>` to a shell: quote what the shell would split or expand.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_a_shell_would_split_and_escapes_xml() {
        assert_eq!(shell_word("my-trail.bucket"), "my-trail.bucket");
        assert_eq!(shell_word("logs/with space"), "'logs/with space'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(xml_text("a&b <c>"), "a&amp;b &lt;c&gt;");
    }
}
