//! The README, held to what it shows: its setup's first command is run exactly as written (it
//! builds and starts the service, and nothing else ran it, so it broke unnoticed), and every
//! command line it shows names flags the program has and files the repository has.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compressor_test_support::{free_port, repo_root};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

/// The fenced code blocks of a Markdown text, each as its lines, with shell line continuations
/// (`\` at the end) joined.
fn code_blocks(markdown: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(Vec::new()),
            }
            continue;
        }
        if let Some(block) = current.as_mut() {
            match block.last_mut() {
                Some(last) if last.ends_with('\\') => {
                    last.pop();
                    last.push(' ');
                    last.push_str(line.trim());
                }
                _ => block.push(line.to_owned()),
            }
        }
    }
    blocks
}

/// The commands of the README's setup block: its first code block after `## Setup`, without
/// comments and blank lines.
fn setup_commands(readme: &str) -> Vec<String> {
    let setup = readme.split("\n## Setup").nth(1).expect("a ## Setup section in README.md");
    let block = code_blocks(setup).into_iter().next().expect("a code block in ## Setup");
    block.into_iter().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

fn get(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The setup's two commands: the first starts the service, the second is what CI runs.
#[test]
fn the_setup_has_a_service_command_and_the_test_command_ci_runs() {
    let commands = setup_commands(&readme());
    assert_eq!(commands.len(), 2, "the README's setup is two commands: {commands:?}");
    assert!(commands[0].ends_with("cargo run --release -- serve"), "{}", commands[0]);
    let test_command = commands[1].split("&&").last().unwrap().trim();
    assert!(test_command.ends_with("cargo test --release --workspace"), "{test_command}");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(ci.contains("scripts/install-deps.sh") && ci.contains("cargo test --release --workspace"), ".ci/run runs another command");
}

/// The first command of the README's setup, exactly as written (in bash, from the repository
/// root), must start the service: it answers `/health`, then stops on SIGTERM. Only the port is
/// chosen, through the service's own `COMPRESSOR_LISTEN`, so that it cannot collide with anything.
#[test]
fn the_readmes_first_command_starts_the_service() {
    let command = setup_commands(&readme()).remove(0);
    let address = format!("127.0.0.1:{}", free_port());
    let log_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .current_dir(repo_root())
        .env("COMPRESSOR_LISTEN", &address)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    let stop = |signal: i32| unsafe {
        libc::kill(-group, signal);
    };
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // On a fresh machine the command installs and builds everything first; after the test build
    // it finds the binary built (or relinks it).
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("`{command}` exited ({status}) before the service answered:\n{}", log_text());
        }
        if get(&address, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            break;
        }
        if started.elapsed() > Duration::from_secs(25 * 60) {
            stop(libc::SIGKILL);
            let _ = child.wait();
            panic!("`{command}` did not answer /health within 25 minutes:\n{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    stop(libc::SIGTERM);
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            stop(libc::SIGKILL);
            panic!("`{command}` still running 30 s after SIGTERM:\n{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log_text();
    assert!(log.contains("compressor listening"), "{log}");
    assert!(status.success() || log.contains("stopped"), "exit {status}:\n{log}");
}

/// Every `compressor SUBCOMMAND …` line in the README's code blocks uses only flags that
/// subcommand's `--help` lists, and every repository path a command names exists.
#[test]
fn every_command_the_readme_shows_names_real_flags_and_files() {
    let readme = readme();
    let mut flags_by_subcommand: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    let mut paths = BTreeSet::new();
    let blocks = code_blocks(&readme);
    // Usage listings (a block that starts `compressor SUBCOMMAND …`): every flag they list.
    for block in &blocks {
        let mut first = block[0].split_whitespace();
        if let (Some("compressor"), Some(subcommand)) = (first.next(), first.next()) {
            let flags = flags_by_subcommand.entry(subcommand.to_owned()).or_default();
            for word in
                block.iter().flat_map(|l| l.split(|c: char| c.is_whitespace() || matches!(c, '/' | '(' | ')' | ',' | '`' | ':' | ';')))
            {
                if word.len() > 2 && word.starts_with("--") {
                    flags.insert(word.to_owned());
                }
            }
        }
    }
    for line in blocks.into_iter().flatten() {
        let line = line.split(" # ").next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            if (word.ends_with("/compressor") || *word == "compressor")
                && let Some(subcommand) = words.get(i + 1).filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            {
                let flags = flags_by_subcommand.entry((*subcommand).to_owned()).or_default();
                // The flags of this command: up to the next command of the line.
                for w in words[i + 2..].iter().take_while(|w| !matches!(**w, "&&" | "|" | ";")) {
                    if let Some(flag) = w.strip_prefix("--").map(|f| f.split(['=', ',', '/']).next().unwrap_or_default())
                        && !flag.is_empty()
                    {
                        flags.insert(format!("--{flag}"));
                    }
                }
            }
            let word = word.trim_matches(|c| matches!(c, '`' | '"' | '\''));
            if ["scripts/", "deploy/", "loadtest/", "crates/", "docs/", "bench/"].iter().any(|p| word.starts_with(p)) {
                paths.insert(word.split([':', ',']).next().unwrap().to_owned());
            }
        }
    }
    assert!(flags_by_subcommand.contains_key("compress") && flags_by_subcommand.contains_key("serve"), "{flags_by_subcommand:?}");
    let binary = env!("CARGO_BIN_EXE_compressor");
    for (subcommand, flags) in &flags_by_subcommand {
        let help = Command::new(binary).args([subcommand, "--help"]).output().unwrap();
        assert!(help.status.success(), "compressor {subcommand} --help failed: the README shows a subcommand that does not exist");
        let help = String::from_utf8_lossy(&help.stdout);
        let missing: Vec<_> = flags.iter().filter(|f| !help.contains(f.as_str())).collect();
        assert!(missing.is_empty(), "the README shows `compressor {subcommand}` with {missing:?}, which its --help does not list");
    }
    let root = repo_root();
    let missing: Vec<_> = paths.iter().filter(|p| !Path::new(&root).join(p).exists()).collect();
    assert!(missing.is_empty(), "the README's commands name files that do not exist: {missing:?}");
}
