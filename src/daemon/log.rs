//! vswitchd's logging: to stderr, with sd-daemon priority prefixes
//! (`<3>` error ... `<7>` debug) when stderr is the systemd journal, and a
//! filter that `vswitchctl log-level` replaces at run time.
//!
//! systemd passes `JOURNAL_STREAM=DEV:INODE` to a service whose stderr is
//! connected to the journal; journald reads a `<N>` at the start of a line
//! as that line's priority (sd-daemon(3)), so `journalctl -p err` shows
//! errors. Each line of a multi-line event (a TOML error with its excerpt)
//! gets the prefix, so the whole message has the priority. The journal
//! stamps lines itself: no timestamp, no colours there.

use std::fmt;

use parking_lot::Mutex;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// Log levels a bare filter word may be (anything else needs `=`).
const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// A log filter that does not parse, or a bare word that is not a level
/// (which `tracing` would read as a target name, silently logging
/// nothing).
#[derive(Debug, thiserror::Error)]
#[error("bad log level `{filter}`: {why}")]
pub struct FilterError {
    pub filter: String,
    pub why: String,
}

/// Parses a filter: a level, or `tracing` directives
/// (`vswitch::daemon=debug,info`).
pub fn parse_filter(filter: &str) -> Result<EnvFilter, FilterError> {
    let err = |why: String| FilterError {
        filter: filter.to_string(),
        why,
    };
    if !LEVELS.contains(&filter.to_ascii_lowercase().as_str()) && !filter.contains('=') {
        return Err(err(
            "use error, warn, info, debug, trace or off, or directives like vswitch=debug,info"
                .into(),
        ));
    }
    EnvFilter::try_new(filter).map_err(|e| err(e.to_string()))
}

/// The sd-daemon priority of a level (syslog's numbers).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether stderr is the journal: `JOURNAL_STREAM` names the device and
/// inode of stderr (systemd sets it; a child whose stderr was redirected
/// inherits the variable but not the stream, hence the comparison).
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Formats events with `inner`, putting `<N>` before every line when
/// `prefix` is on.
pub struct Prioritized<F> {
    inner: F,
    prefix: bool,
}

impl<F> Prioritized<F> {
    pub fn new(inner: F, prefix: bool) -> Prioritized<F> {
        Prioritized { inner, prefix }
    }
}

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.prefix {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut text = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut text), event)?;
        let n = priority(event.metadata().level());
        for line in text.trim_end_matches('\n').split('\n') {
            writeln!(writer, "<{n}>{line}")?;
        }
        Ok(())
    }
}

type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The running log filter, and the way to change it.
pub struct LogControl {
    set: SetFilter,
    current: Mutex<String>,
}

impl LogControl {
    /// The filter in force (as given).
    pub fn current(&self) -> String {
        self.current.lock().clone()
    }

    /// Replaces the filter; returns the new one.
    pub fn set(&self, filter: &str) -> Result<String, FilterError> {
        let f = parse_filter(filter)?;
        (self.set)(f).map_err(|why| FilterError {
            filter: filter.to_string(),
            why,
        })?;
        *self.current.lock() = filter.to_string();
        Ok(filter.to_string())
    }
}

/// Sets up logging to stderr with `level` (`RUST_LOG`, when set and not
/// empty, replaces it) and returns the handle that changes the filter.
/// Colours only on a terminal and without `NO_COLOR`; priorities and no
/// timestamps on the journal.
pub fn init(level: &str) -> Result<LogControl, FilterError> {
    let level = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => f,
        _ => level.to_string(),
    };
    let filter = parse_filter(&level)?;
    let journal = stderr_is_journal();
    let ansi = !journal
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    if journal {
        registry
            .with(fmt.event_format(Prioritized::new(
                tracing_subscriber::fmt::format().without_time(),
                true,
            )))
            .init();
    } else {
        registry.with(fmt).init();
    }
    Ok(LogControl {
        set: Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())),
        current: Mutex::new(level),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(prefix: bool, filter: &str, log: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let (filter, handle) = reload::Layer::new(parse_filter(filter).unwrap());
        let sub = tracing_subscriber::registry().with(filter).with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || out.clone())
                .with_ansi(false)
                .event_format(Prioritized::new(
                    tracing_subscriber::fmt::format().without_time(),
                    prefix,
                )),
        );
        tracing::subscriber::with_default(sub, || {
            log();
            handle.reload(parse_filter("debug").unwrap()).unwrap();
            tracing::debug!("after reload");
        });
        String::from_utf8(buf.0.lock().clone()).unwrap()
    }

    #[test]
    fn journal_lines_carry_their_priority() {
        let text = logged(true, "info", || {
            tracing::error!("bad\nsecond line");
            tracing::warn!("careful");
            tracing::info!("fine");
            tracing::debug!("hidden");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[0].starts_with("<3>") && lines[0].contains("bad"),
            "{text}"
        );
        assert_eq!(lines[1], "<3>second line", "{text}");
        assert!(lines[2].starts_with("<4>") && lines[2].contains("careful"));
        assert!(lines[3].starts_with("<6>") && lines[3].contains("fine"));
        assert!(
            lines[4].starts_with("<7>") && lines[4].contains("after reload"),
            "the reloaded filter lets debug through: {text}"
        );
        assert!(!text.contains("hidden"));
        let plain = logged(false, "info", || tracing::error!("bad"));
        assert!(!plain.contains("<3>") && plain.contains("bad"), "{plain}");
    }

    #[test]
    fn filters_are_checked() {
        assert!(parse_filter("debug").is_ok());
        assert!(parse_filter("WARN").is_ok());
        assert!(parse_filter("vswitch=debug,info").is_ok());
        let e = parse_filter("verbose").unwrap_err().to_string();
        assert!(e.contains("verbose") && e.contains("debug"), "{e}");
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
