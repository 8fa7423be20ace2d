//! virtio-net header (placeholder, filled in by the dataplane work).
