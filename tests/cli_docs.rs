//! The docs against the programs (no root, no network): every long option
//! of `vswitchd --help` and of each `vswitchctl` command's `--help` is in
//! docs/operations.md or docs/configuration.md; every control error code
//! is documented; every alert links a runbook section that exists; the
//! man pages and completions generate; command-line errors name the flag
//! and config mistakes get their hints.

mod support;

use std::collections::BTreeSet;

use support::cmd::{out3, repo, run, vswitchctl_bin, vswitchd_bin};

/// The `--long` options a help text lists (in its option lines).
fn long_options(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help.lines() {
        let l = line.trim_start();
        if !l.starts_with('-') {
            continue;
        }
        for word in l.split([' ', ',', '=', '[', '<']) {
            if let Some(name) = word.strip_prefix("--")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                out.insert(format!("--{name}"));
            }
        }
    }
    out.remove("--help");
    out.remove("--version");
    out
}

fn help(argv: &[&str]) -> String {
    let o = run(argv);
    assert!(o.status.success(), "{argv:?} --help failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether `text` names option `opt` (not as the start of a longer one).
fn mentions(text: &str, opt: &str) -> bool {
    text.match_indices(opt).any(|(i, _)| {
        text[i + opt.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-')
    })
}

fn docs() -> String {
    ["docs/operations.md", "docs/configuration.md"]
        .iter()
        .map(|p| std::fs::read_to_string(repo(p)).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// vswitchctl's commands, as argument lists (`["port", "add"]`), from its
/// own help.
fn ctl_commands() -> Vec<Vec<String>> {
    fn subcommands(prefix: &[String]) -> Vec<Vec<String>> {
        let mut argv: Vec<&str> = vec![vswitchctl_bin()];
        argv.extend(prefix.iter().map(String::as_str));
        argv.push("--help");
        let text = help(&argv);
        let mut out = Vec::new();
        let mut in_commands = false;
        for line in text.lines() {
            if line.starts_with("Commands:") {
                in_commands = true;
                continue;
            }
            if in_commands {
                let Some(name) = line
                    .strip_prefix("  ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    break;
                };
                if name == "help" {
                    continue;
                }
                let mut cmd = prefix.to_vec();
                cmd.push(name.to_string());
                out.push(cmd.clone());
                out.extend(subcommands(&cmd));
            }
        }
        out
    }
    subcommands(&[])
}

#[test]
fn every_option_is_documented() {
    let docs = docs();
    let mut missing = Vec::new();
    for opt in long_options(&help(&[vswitchd_bin(), "--help"])) {
        if !mentions(&docs, &opt) {
            missing.push(format!("vswitchd {opt}"));
        }
    }
    let commands = ctl_commands();
    assert!(commands.len() >= 15, "{commands:?}");
    for cmd in &commands {
        let text = cmd.join(" ");
        if !docs.contains(&format!("vswitchctl {text}"))
            && !docs.contains(&format!("### {text}"))
            && !docs.contains(&format!("`{text}`"))
        {
            missing.push(format!("vswitchctl {text} (the command)"));
        }
        let mut argv: Vec<&str> = vec![vswitchctl_bin()];
        argv.extend(cmd.iter().map(String::as_str));
        argv.push("--help");
        for opt in long_options(&help(&argv)) {
            if !mentions(&docs, &opt) {
                missing.push(format!("vswitchctl {text} {opt}"));
            }
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not in docs/operations.md or docs/configuration.md: {missing:?}"
    );
}

#[test]
fn every_error_code_and_runbook_is_documented() {
    let ops = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    for code in vswitch::control::protocol::ErrorCode::ALL {
        assert!(
            ops.contains(&format!("| `{code}` |")),
            "code {code} not in operations.md"
        );
    }
    // GitHub-style anchors of the headings.
    let anchors: BTreeSet<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let rules = std::fs::read_to_string(repo("dashboards/vswitchd-alerts.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let runbooks: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
        .map(|u| u.trim_matches('"'))
        .collect();
    assert!(alerts.contains(&"VswitchdConfigReloadFailed"));
    assert_eq!(alerts.len(), runbooks.len(), "an alert without runbook_url");
    for (alert, url) in alerts.iter().zip(&runbooks) {
        let anchor = url
            .strip_prefix("file:///usr/share/doc/vswitchd/operations.md#")
            .unwrap_or_else(|| panic!("{alert}: {url}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert}: {url}");
        assert!(
            anchors.contains(anchor),
            "{alert}: no heading for #{anchor} in operations.md"
        );
    }
}

#[test]
fn man_pages_and_completions_generate() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        env!("CARGO_BIN_EXE_vswitch-gen"),
        dir.path().to_str().unwrap(),
    ]);
    let (ok, out, err) = out3(&o);
    assert!(ok, "{err}");
    for f in [
        "man/vswitchd.8",
        "man/vswitchctl.8",
        "man/vswitchctl-port-add.8",
        "man/vswitchctl-fdb-get.8",
        "man/vswitchctl-log-level.8",
        "man/vswitchd.toml.5",
        "completions/bash/vswitchctl",
        "completions/zsh/_vswitchctl",
        "completions/fish/vswitchctl.fish",
        "completions/bash/vswitchd",
    ] {
        assert!(
            out.lines().any(|l| l.ends_with(f)),
            "{f} not written: {out}"
        );
    }
    let page = |f: &str| std::fs::read_to_string(dir.path().join("man").join(f)).unwrap();
    let ctl = page("vswitchctl.8");
    assert!(
        ctl.contains("EXIT STATUS") && ctl.contains("no_such_port"),
        "{ctl}"
    );
    let toml = page("vswitchd.toml.5");
    for key in [
        "control\\-socket\\-group",
        "socket-group",
        "mac-limit",
        "group-fwd-mask",
    ] {
        let plain = key.replace('\\', "");
        assert!(
            toml.contains(key) || toml.contains(&plain),
            "vswitchd.toml(5) lacks {plain}"
        );
    }
    assert!(page("vswitchd.8").contains("\\-\\-control\\-socket\\-group"));
    let bash = dir.path().join("completions/bash/vswitchctl");
    let (ok, _, err) = out3(&run(&["bash", "-n", bash.to_str().unwrap()]));
    assert!(ok, "{err}");
}

fn check_config(args: &[&str]) -> (i32, String) {
    let mut v = vec![vswitchd_bin(), "--check-config"];
    v.extend_from_slice(args);
    let o = run(&v);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn command_line_errors_name_the_flag_and_files_get_hints() {
    for (args, want) in [
        (
            &["--fdb-size", "5"][..],
            "--fdb-size 5: must be 16 to 4000000",
        ),
        (&["--workers", "100"], "--workers 100: must be 1 to 64"),
        (&["--busy-poll", "5000000"], "--busy-poll 5000000"),
        (&["--metrics-addr", "nowhere"], "--metrics-addr: `nowhere`"),
        (&["--control-socket", ""], "--control-socket: empty"),
        (
            &["--ports", "vm1,raw:vm1"],
            "--ports: port `raw:vm1`: interface `vm1` is already port `vm1`",
        ),
    ] {
        let (code, err) = check_config(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("config file"),
            "{args:?} blames a file: {err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    let f_s = f.to_str().unwrap();
    for (text, want) in [
        ("[port]\nname = \"tap0\"\n", "[[port]]"),
        (
            "[[port]]\nname = \"unix:/tmp/x.sock\"\nsocket-mode = 0660\n",
            "0o660",
        ),
        (
            "[[port]]\nname = \"a\"\n[[port]]\nname = \"raw:a\"\n",
            "already port `a`",
        ),
        (
            "[[port]]\nname = \"tap0\"\nsocket-group = \"kvm\"\n",
            "socket-group applies only",
        ),
    ] {
        std::fs::write(&f, text).unwrap();
        let (code, err) = check_config(&["--config", f_s]);
        assert_eq!(code, 1, "{text:?}: {err}");
        assert!(err.contains(want) && err.contains(f_s), "{text:?}: {err}");
    }
    // A file and a flag: the flag is named, not the file.
    std::fs::write(&f, "[switch]\nworkers = 2\n").unwrap();
    let (code, err) = check_config(&["--config", f_s, "--workers", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--workers 0") && !err.contains(f_s), "{err}");
    // Bad log levels are usage errors (2).
    let (code, err) = check_config(&["--log-level", "verbose"]);
    assert_eq!(code, 2, "{err}");
}
