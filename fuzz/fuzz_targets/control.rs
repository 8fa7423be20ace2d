//! The control socket's request lines (`control::protocol::parse_request`,
//! what the server runs on each line), and what a request carries into the
//! daemon: a `port-add` section's plan, a `port-set`'s changes applied.
//!
//! Checked: nothing panics; a refused line gets a `bad_request` answer that
//! serialises; an accepted request written back as a line parses to the
//! same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::config::PortSection;
use vswitch::control::protocol::{self, Envelope, ErrorCode, Request, VERSION};

fuzz_target!(|data: &[u8]| {
    match protocol::parse_request(data) {
        Err(resp) => {
            assert!(!resp.ok);
            assert_eq!(resp.code, Some(ErrorCode::BadRequest));
            serde_json::to_vec(&resp).expect("an error answer serialises");
        }
        Ok(req) => {
            let line = serde_json::to_vec(&Envelope {
                version: VERSION,
                body: req.clone(),
            })
            .expect("a request serialises");
            let again = protocol::parse_request(&line)
                .unwrap_or_else(|e| panic!("written request does not parse: {:?}", e.error));
            assert_eq!(
                again,
                req,
                "round trip of {}",
                String::from_utf8_lossy(&line)
            );
            match &req {
                Request::PortAdd { port } => {
                    let _ = port.plan();
                }
                Request::PortSet { name, changes } => {
                    let mut s = PortSection::named(name);
                    changes.apply(&mut s);
                    if let Ok(plan) = s.plan() {
                        let flags = s.flags();
                        assert_eq!(plan.cfg.flags, flags);
                    }
                }
                _ => {}
            }
        }
    }
});
