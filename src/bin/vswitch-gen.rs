//! vswitch-gen: writes the package's generated documentation from the
//! sources of truth, so it cannot drift from them:
//!
//! - `man/vswitchd.8`, `man/vswitchctl.8` and a page per vswitchctl
//!   command (`man/vswitchctl-port-add.8`, ...) from the clap definitions
//!   in [`vswitch::cli`] (clap_mangen);
//! - `man/vswitchd.toml.5` from docs/configuration.md (the config
//!   reference), converted to roff here;
//! - `completions/{bash,zsh,fish}/` for both commands (clap_complete).
//!
//! `vswitch-gen OUT_DIR [CONFIGURATION_MD]`; scripts/package.sh runs it
//! into target/gen before cargo-deb packs the files. Not installed.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

const MANUAL: &str = "vswitch manual";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: vswitch-gen OUT_DIR [CONFIGURATION_MD]");
        return ExitCode::from(2);
    };
    let conf = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"));
    match generate(Path::new(out), &conf) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vswitch-gen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path, conf: &Path) -> Result<Vec<PathBuf>> {
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    let mut files = Vec::new();
    let mut write = |path: PathBuf, bytes: &[u8]| -> Result<()> {
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    let mut vswitchd = vswitch::cli::vswitchd::Cli::command();
    vswitchd.build();
    write(
        man.join("vswitchd.8"),
        &man_page(&vswitchd, VSWITCHD_EXTRA)?,
    )?;
    let mut ctl = vswitch::cli::vswitchctl::Cli::command().disable_help_subcommand(true);
    ctl.build();
    write(
        man.join("vswitchctl.8"),
        &man_page(&ctl, &vswitchctl_extra())?,
    )?;
    for sub in subcommands(&ctl) {
        let name = sub.get_display_name().unwrap_or(sub.get_name()).to_string();
        write(
            man.join(format!("{name}.8")),
            &man_page(&sub, CTL_SUB_EXTRA)?,
        )?;
    }
    let md =
        std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
    write(man.join("vswitchd.toml.5"), config_page(&md).as_bytes())?;

    for (shell, dir, file) in [
        (Shell::Bash, "bash", "{}"),
        (Shell::Zsh, "zsh", "_{}"),
        (Shell::Fish, "fish", "{}.fish"),
    ] {
        let d = out.join("completions").join(dir);
        std::fs::create_dir_all(&d)?;
        for cmd in [&vswitchd, &ctl] {
            let name = cmd.get_name().to_string();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
            write(d.join(file.replace("{}", &name)), &buf)?;
        }
    }
    Ok(files)
}

/// Every subcommand, depth first, each with its full display name.
fn subcommands(cmd: &Command) -> Vec<Command> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.push(sub.clone());
        out.extend(subcommands(sub));
    }
    out
}

/// A section-8 page: clap_mangen's sections, with the after-help text as
/// EXAMPLES (kept as written) and `extra` (roff) at the end.
fn man_page(cmd: &Command, extra: &str) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual(MANUAL)
        .source(format!("vswitch {}", env!("CARGO_PKG_VERSION")));
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    man.render_options_section(&mut w)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut w)?;
    }
    if let Some(after) = cmd.get_after_help() {
        let text = after.to_string();
        let text = text.strip_prefix("Examples:\n").unwrap_or(&text);
        let text = text.strip_prefix("Example:\n").unwrap_or(text);
        writeln!(w, ".SH EXAMPLES\n.nf")?;
        for line in text.lines() {
            writeln!(w, "{}", escape_code(line))?;
        }
        writeln!(w, ".fi")?;
    }
    w.write_all(extra.as_bytes())?;
    Ok(w)
}

const VSWITCHD_EXTRA: &str = r#".SH SIGNALS
.TP
\fBSIGHUP\fR
Re-read the config file and apply it (as \fBvswitchctl reload\fR). If the
file is wrong the switch keeps its configuration and logs the error at
priority err.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Close every port (TAPs vswitchd created disappear), remove the control
socket and exit 0.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter; replaces \fB\-\-log\-level\fR when set and not empty.
.TP
\fBNO_COLOR\fR
No ANSI colours in the log.
.TP
\fBNOTIFY_SOCKET\fR, \fBWATCHDOG_USEC\fR
Set by systemd (Type=notify): vswitchd sends READY=1 and a STATUS line
once forwarding, RELOADING=1 and READY=1 around a reload, STOPPING=1, and
WATCHDOG=1 at half the watchdog interval.
.TP
\fBJOURNAL_STREAM\fR
Set by systemd when stderr is the journal: each log line then starts
with its priority (<3> error, <4> warning, <6> info, <7> debug), so
\fBjournalctl \-p err\fR finds errors.
.SH FILES
.TP
\fI/etc/vswitchd/vswitchd.toml\fR
The configuration of vswitchd.service; \fI/etc/vswitchd/NAME.toml\fR for
vswitchd@NAME.service. See \fBvswitchd.toml\fR(5).
.TP
\fI/run/vswitchd/vswitchd.sock\fR
The control socket (\fI/run/vswitchd/NAME.sock\fR for an instance).
.TP
\fI/usr/share/doc/vswitchd/\fR
operations.md, configuration.md, qemu.md, metrics.md and more.
.SH SEE ALSO
\fBvswitchctl\fR(8), \fBvswitchd.toml\fR(5), \fBsystemctl\fR(1),
\fBjournalctl\fR(1)
"#;

const CTL_SUB_EXTRA: &str = r#".SH SEE ALSO
\fBvswitchctl\fR(8), \fBvswitchd\fR(8)
"#;

/// vswitchctl(8)'s closing sections: exit status and the error codes.
fn vswitchctl_extra() -> String {
    let mut s = String::from(
        r#".SH EXIT STATUS
.TP
\fB0\fR
Done.
.TP
\fB1\fR
vswitchd refused or failed the request, or is not running. The message
goes to stderr; with \fB\-\-json\fR, stdout gets one line
{"ok":false,"code":CODE,"error":TEXT}.
.TP
\fB2\fR
Bad command line (unknown option, missing or malformed value).
.SH ERROR CODES
Scripts test the code, not the text (which may change):
"#,
    );
    for code in vswitch::control::protocol::ErrorCode::ALL {
        let _ = writeln!(s, ".TP\n\\fB{code}\\fR\n{}", code.meaning());
    }
    s.push_str(
        r#".SH ENVIRONMENT
.TP
\fBVSWITCHD_SOCKET\fR
The control socket, as \fB\-\-socket\fR.
.SH SEE ALSO
\fBvswitchd\fR(8), \fBvswitchd.toml\fR(5)
"#,
    );
    s
}

/// Keeps a line of roff text from reading as a request (a leading `.`
/// or `'`).
fn escape_line(l: &str) -> String {
    if l.starts_with('.') || l.starts_with('\'') {
        format!("\\&{l}")
    } else {
        l.to_string()
    }
}

/// A line of plain text (a code block) for roff: backslashes too.
fn escape_code(line: &str) -> String {
    escape_line(&line.replace('\\', "\\e"))
}

/// Inline markdown to roff: `code` in bold, `[text](link)` as text,
/// `**bold**` as bold.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '`' => {
                // `` `x` `` with double backticks, or `x`.
                let ticks = rest.chars().take_while(|c| *c == '`').count();
                let fence = &rest[..ticks];
                if let Some(end) = rest[ticks..].find(fence) {
                    let code = rest[ticks..ticks + end].trim();
                    // `\:` lets roff break a long option string after a comma.
                    let code = code.replace('\\', "\\e").replace(',', ",\\:");
                    let _ = write!(out, "\\fB{code}\\fR");
                    rest = &rest[ticks + end + ticks..];
                } else {
                    out.push_str(fence);
                    rest = &rest[ticks..];
                }
            }
            '[' => {
                let link = rest.find("](").and_then(|m| {
                    let close = rest[m..].find(')')? + m;
                    Some((m, close))
                });
                match link {
                    Some((m, close)) if !rest[1..m].contains('[') => {
                        out.push_str(&inline(&rest[1..m]));
                        rest = &rest[close + 1..];
                    }
                    _ => {
                        out.push('[');
                        rest = &rest[1..];
                    }
                }
            }
            '*' if rest.starts_with("**") => match rest[2..].find("**") {
                Some(end) => {
                    let _ = write!(out, "\\fB{}\\fR", &rest[2..2 + end]);
                    rest = &rest[2 + end + 2..];
                }
                None => {
                    out.push_str("**");
                    rest = &rest[2..];
                }
            },
            '\\' => {
                out.push_str("\\e");
                rest = &rest[1..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Cells of a markdown table row (`| a | b |`); `|` inside backticks
/// stays in its cell.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut in_code = false;
    for c in row.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.last_mut().unwrap().push(c);
            }
            '|' if !in_code => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// vswitchd.toml(5) from docs/configuration.md: its sections but the
/// command line (that is vswitchd(8)), headings as .SH/.SS, tables as
/// tagged paragraphs (first column the tag, the others labelled), lists
/// as indented paragraphs, code blocks as is.
fn config_page(md: &str) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        ".TH VSWITCHD.TOML 5 \"\" \"vswitch {}\" \"{MANUAL}\"",
        env!("CARGO_PKG_VERSION")
    );
    r.push_str(".SH NAME\nvswitchd.toml \\- configuration file of vswitchd\n");
    r.push_str(".SH SYNOPSIS\n/etc/vswitchd/vswitchd.toml, /etc/vswitchd/NAME.toml\n");
    r.push_str(".SH DESCRIPTION\n");
    let mut skip = false;
    let mut lines = md.lines().peekable();
    let mut header: Vec<String> = Vec::new();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            skip = h.starts_with("Command line");
            if !skip {
                let _ = writeln!(r, ".SH {}", inline(h).to_uppercase());
            }
            continue;
        }
        if skip || line.starts_with("# ") {
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(r, ".SS {}", inline(h));
        } else if line.starts_with("```") {
            r.push_str(".PP\n.RS 4\n.nf\n");
            for code in lines.by_ref() {
                if code.starts_with("```") {
                    break;
                }
                let _ = writeln!(r, "{}", escape_code(code));
            }
            r.push_str(".fi\n.RE\n");
        } else if line.starts_with('|') {
            let row = cells(line);
            if row
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue;
            }
            if header.is_empty() {
                header = row;
                continue;
            }
            let _ = writeln!(r, ".TP\n{}", escape_line(&inline(&row[0])));
            let mut first = true;
            for (name, cell) in header.iter().zip(&row).skip(1) {
                if cell.is_empty() {
                    continue;
                }
                if !first {
                    r.push_str(".br\n");
                }
                first = false;
                let text = if name == "meaning" {
                    inline(cell)
                } else {
                    format!("{}: {}", name, inline(cell))
                };
                let _ = writeln!(r, "{}", escape_line(&text));
            }
            if lines.peek().is_none_or(|l| !l.starts_with('|')) {
                header.clear();
            }
        } else if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            let _ = writeln!(r, ".IP \\(bu 2\n{}", escape_line(&inline(item)));
        } else if let Some((n, item)) = line
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            let _ = writeln!(r, ".IP {n}. 4\n{}", escape_line(&inline(item)));
        } else if line.trim().is_empty() {
            r.push_str(".PP\n");
        } else {
            let _ = writeln!(r, "{}", escape_line(&inline(line.trim())));
        }
    }
    r.push_str(".SH SEE ALSO\n\\fBvswitchd\\fR(8), \\fBvswitchctl\\fR(8)\n");
    // Empty paragraphs in a row read as one.
    while r.contains(".PP\n.PP\n") {
        r = r.replace(".PP\n.PP\n", ".PP\n");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_roff() {
        assert_eq!(inline("a `b` [c](d.md) **e**"), "a \\fBb\\fR c \\fBe\\fR");
        assert_eq!(inline("`` `4095` is not ``"), "\\fB`4095` is not\\fR");
        assert_eq!(cells("| `a|b` | c |"), vec!["`a|b`", "c"]);
        let page = config_page(
            "# T\n\n## Command line\n\nskip me\n\n## Keys\n\n| key | type | meaning |\n|---|---|---|\n| `k` | int | The k. |\n\n- item\n\n```toml\n.x = 1\n```\n",
        );
        assert!(!page.contains("skip me"), "{page}");
        assert!(page.contains(".SH KEYS"), "{page}");
        assert!(
            page.contains(".TP\n\\fBk\\fR\ntype: int\n.br\nThe k.\n"),
            "{page}"
        );
        assert!(page.contains(".IP \\(bu 2\nitem"), "{page}");
        assert!(page.contains(".nf\n\\&.x = 1\n.fi"), "{page}");
    }
}
