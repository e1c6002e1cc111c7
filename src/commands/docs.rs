//! `generate-docs`: the man pages and shell completions, made from the same clap definitions
//! as `--help`, so they cannot drift from it. Packaging runs this; nothing is written by hand.

use std::fs;
use std::io;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{exit, Cli};

pub fn run(out: &Path) -> u8 {
    match write_all(out) {
        Ok(files) => {
            for file in files {
                println!("{file}");
            }
            exit::OK
        }
        Err(e) => {
            tracing::error!(
                "cannot write the docs into {}: {e} (pass --out with a directory this user may write)",
                out.display()
            );
            exit::FAILED
        }
    }
}

/// Writes `man/*.1` (one page for the command, one per visible subcommand) and
/// `completions/` for bash, zsh and fish under `out`. Returns the files written.
fn write_all(out: &Path) -> io::Result<Vec<String>> {
    let mut written = Vec::new();
    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir)?;
    // One page for the command and one per visible subcommand (`ossec-cloudtrail-check.1`...).
    clap_mangen::generate_to(Cli::command(), &man_dir)?;
    let mut pages: Vec<String> = fs::read_dir(&man_dir)?
        .map(|entry| entry.map(|e| e.path().display().to_string()))
        .collect::<io::Result<_>>()?;
    pages.sort();
    written.extend(pages);

    let completions = out.join("completions");
    fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = Cli::command();
        let path =
            clap_complete::generate_to(shell, &mut command, "ossec-cloudtrail", &completions)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
