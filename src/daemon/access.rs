//! Who may use vswitchd's sockets: the control socket and `unix:` /
//! `unixgram:` port sockets are root's (mode 0600) unless a group is
//! named (`control-socket-group`, a port's `socket-group`): then the
//! socket belongs to that group, mode 0660 unless a mode is given. The
//! group is applied each time the socket is made (every start, and when
//! a port is opened again), so it holds across restarts.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a socket could not be given to its group.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("no group `{0}` (see `getent group`; create it with `groupadd {0}`)")]
    NoSuchGroup(String),
    #[error("looking up group `{group}`: {source}")]
    Lookup { group: String, source: io::Error },
    #[error("giving {path} to group `{group}` (mode {mode:#o}): {source}")]
    Chown {
        path: PathBuf,
        group: String,
        mode: u32,
        source: io::Error,
    },
}

/// The id of group `name` (a name, through NSS, or a number).
pub fn group_id(name: &str) -> Result<u32, GroupError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(GroupError::NoSuchGroup(name.to_string())),
        Err(e) => Err(GroupError::Lookup {
            group: name.to_string(),
            source: io::Error::from(e),
        }),
    }
}

/// Gives the socket file at `path` to `group` with `mode` (the owner
/// stays).
pub fn give_to_group(path: &Path, group: &str, mode: u32) -> Result<(), GroupError> {
    let gid = group_id(group)?;
    let err = |source| GroupError::Chown {
        path: path.to_path_buf(),
        group: group.to_string(),
        mode,
        source,
    };
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
}

/// The mode a socket gets: the one given, else 0660 with a group and
/// 0600 without.
pub fn socket_mode(mode: Option<u32>, group: Option<&str>) -> u32 {
    mode.unwrap_or(if group.is_some() { 0o660 } else { 0o600 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        let e = group_id("no-such-group-vswitch").unwrap_err().to_string();
        assert!(
            e.contains("no-such-group-vswitch") && e.contains("getent"),
            "{e}"
        );
        assert_eq!(socket_mode(None, None), 0o600);
        assert_eq!(socket_mode(None, Some("kvm")), 0o660);
        assert_eq!(socket_mode(Some(0o640), Some("kvm")), 0o640);
    }

    #[test]
    fn a_file_goes_to_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "").unwrap();
        // Our own primary group: allowed without privileges.
        let gid = std::fs::metadata(dir.path()).unwrap().gid();
        give_to_group(&p, &gid.to_string(), 0o660).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.gid(), m.mode() & 0o777), (gid, 0o660));
    }
}
